"""The openface backend with a real OpenFace 2.2 `FeatureExtraction`, built from the fixture.

The binary is built once by `python -m mersemi.fixtures.openface` (`make test` runs it first;
here it builds on first use) into a cache outside the checkout. Without the fixture these tests
are skipped.
The fixture's build has the CLNF landmark model, not CE-CLM (see its README), hence
openface_model=model/main_clnf_general.txt.
"""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import yaml
from helpers.openface import built_or_skip

from mersemi.errors import InputError
from mersemi.extract.cli import run_stage
from mersemi.extract.crops import open_crops
from mersemi.extract.faces import Params as FacesParams
from mersemi.extract.faces import check_model
from mersemi.extract.faces.frames import sample_indices
from mersemi.extract.faces.haar import HaarAligner
from mersemi.fixtures.media import make_media, write_shard
from mersemi.store import read_features

REPO = Path(__file__).resolve().parents[1]
CLNF = "model/main_clnf_general.txt"


@pytest.fixture(scope="module")
def exe():
    return built_or_skip()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("ofmedia")
    clips = make_media(root)
    return root, clips, write_shard(root / "shard.csv", clips)


def params(exe, **kw) -> FacesParams:
    """recipe mersemi (successful frames, unmasked); mertools: test_extract_mertools.py."""
    kw.setdefault("recipe", "mersemi")
    return FacesParams(backend="openface", openface_bin=str(exe), openface_model=CLNF, **kw)


def test_openface_end_to_end(exe, media, tmp_path):
    _, _, shard = media
    out = tmp_path / "faces" / "shard-0000.h5"
    outcome = run_stage(
        "faces", {"shard": shard, "out": out, "params": params(exe, size=112, max_frames=5)}
    )
    cf = open_crops(out)
    reason = dict(zip(cf.names, cf.reasons, strict=True))
    assert dict(zip(cf.names, cf.valid, strict=True)) == {
        "face": True, "面孔_中文": True, "face2": True, "silent": True,
        "noface": False, "corrupt": False, "missing": False,
    }  # fmt: skip
    assert reason["noface"] == "no_face"  # OpenFace ran, no frame succeeded
    assert reason["corrupt"] == "openface_error" and reason["missing"] == "missing_file"
    assert outcome.counts() == {"no_face": 1, "openface_error": 1, "missing_file": 1}
    with h5py.File(out, "r") as h5:
        assert h5.attrs["backend"] == "openface"
        crops, frames = h5["crops"][:], h5["frame"][:]
    o = cf.offsets
    assert crops.shape[1:] == (112, 112, 3)
    for i in range(4):  # every test video has a face in all 12 frames: 5 sampled, in order
        f = frames[o[i] : o[i + 1]]
        assert list(f) == list(sample_indices(12, 5)) == [0, 3, 5, 8, 10]
    face = crops[o[0] : o[1]]
    # the same aligned face in every frame although it moves in the video
    assert face.std() > 20 and np.abs(face[0].astype(int) - face[-1].astype(int)).mean() < 25
    np.testing.assert_array_equal(face, crops[o[1] : o[2]])  # same video, non-ASCII name


def test_face_fills_the_crop_unless_simscale_is_forced(exe, media, tmp_path):
    """size 224: OpenFace's own scale (0.7·224/112) vs a forced -simscale 0.7. With 0.7 the
    face (Haar box) is ~half the crop's width; the default crop is that crop's centre at 2×."""
    root, clips, _ = media
    shard = write_shard(tmp_path / "s.csv", {"face": clips["face"]})
    crops = {}
    for scale in (None, 0.7):
        out = tmp_path / f"{scale}.h5"
        run_stage(
            "faces",
            {
                "shard": shard,
                "out": out,
                "params": params(exe, size=224, openface_scale=scale, max_frames=4),
            },
        )
        with h5py.File(out, "r") as h5:
            crops[scale] = h5["crops"][:]
    small, full = crops[0.7], crops[None]
    haar = HaarAligner(FacesParams(min_face=16))
    for c in small:
        box = haar.detect(cv2.equalizeHist(cv2.cvtColor(c, cv2.COLOR_RGB2GRAY)))
        assert box is not None and 0.35 < box[2] / 224 < 0.6, box
    centre = np.stack([cv2.resize(c[56:168, 56:168], (224, 224)) for c in small]).astype(int)
    assert np.abs(full.astype(int) - centre).mean() < 8  # the same face at twice the size
    assert np.abs(full.astype(int) - small.astype(int)).mean() > 30


def test_missing_landmark_model_fails_before_any_clip(exe, media, tmp_path):
    _, _, shard = media
    p = FacesParams(backend="openface", openface_bin=str(exe))  # default CE-CLM: not built
    with pytest.raises(InputError, match="cen_patches.*openface_model"):
        run_stage("faces", {"shard": shard, "out": tmp_path / "o.h5", "params": p})
    assert not (tmp_path / "o.h5").exists()


def test_check_model(exe, tmp_path):
    def failed(d):
        return [(c.item, c.fix) for c in check_model(d) if not c.ok]

    good = {"backend": "openface", "openface_bin": str(exe), "openface_model": CLNF}
    assert failed(good) == []
    assert [c.item for c in check_model(good)] == [
        "ffmpeg", "openface_bin", "openface_model", "openface run"]  # fmt: skip
    [(item, fix)] = failed({**good, "openface_model": None})
    assert item == "openface_model" and "download_models.sh" in fix
    assert [i for i, _ in failed({**good, "openface_model": "model/nope.txt"})] == [
        "openface_model"
    ]
    assert [i for i, _ in failed({**good, "openface_bin": "/no/FeatureExtraction"})] == [
        "openface_bin"
    ]
    # a binary that does not run (here: not an executable)
    broken = tmp_path / "bin" / "FeatureExtraction"
    broken.parent.mkdir()
    broken.write_text("not a program")
    (tmp_path / "bin" / "model").symlink_to(exe.parent / "model")
    assert [i for i, _ in failed({**good, "openface_bin": str(broken)})] == ["openface run"]


@pytest.mark.slow
def test_workflow_with_openface_backend(exe, tmp_path):
    """The demo config with `backend: openface`, through Snakemake up to the visual features
    of one shard of four (a quarter of the demo's clips: OpenFace takes ~1 s a clip here)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["extract"]["faces"] = {
        "backend": "openface", "openface_bin": str(exe), "openface_model": CLNF,
        "max_frames": 8, "size": 112,
    }  # fmt: skip
    config["shards"] = 4
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    target = "results/features/visual/shard-0000.h5"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--configfile", str(tmp_path / "config.yaml"), "--directory", str(tmp_path),
           "--cores", "2", target]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cf = open_crops(tmp_path / "results/faces/shard-0000.h5")
    assert cf.params["backend"] == "openface" and cf.size == 112
    assert set(r for r, v in zip(cf.reasons, cf.valid, strict=True) if not v) <= {"no_face"}
    fs = read_features(tmp_path / target)
    assert fs.meta.params["faces"]["backend"] == "openface"
    np.testing.assert_array_equal(fs.valid, cf.valid)
    # demo clips are real face photographs; MTCNN + CLNF finds nearly all of them
    assert len(cf.names) >= 40 and cf.valid.mean() >= 0.9, (cf.valid.sum(), len(cf.names))
