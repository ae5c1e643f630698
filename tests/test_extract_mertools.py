"""The `mertools` recipe against what MERTools' own MER2024 extractors wrote
(`shared/fixtures/mertools-features`, see its README): every clip of every feature file there,
through the stages' real I/O (`mersemi extract <stage>`), on CPU in fp32.

OpenFace's landmark fit goes through OpenBLAS, whose kernels differ per CPU: the fixture was
made with the AVX2 (Haswell) kernels; on an AVX-512 CPU ~6 % of the crop pixels differ by 1-5
grey levels. The faces tests pin OPENBLAS_CORETYPE=Haswell, as a user comparing crops with
MERTools' bit for bit would (docs/extraction.md).

Under `mertools` each clip equals MERTools' to 1e-5 relative (`||a-b|| / ||b||`; the largest
element difference is reported too). Under `mersemi` the tests state the documented
differences (docs/extraction.md). Faces -> visual runs the OpenFace that
`mersemi.fixtures.openface` builds from shared/fixtures/openface (CLNF, as the fixture's run used).
"""

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from mersemi.extract.cli import run_stage
from mersemi.fixtures.shared import shared_fixture
from mersemi.store import read_features

FIX = shared_fixture("mertools-features", "reference.json", "MERSEMI_MERTOOLS_FIXTURE")
TOL = 1e-5
CLNF = "model/main_clnf_general.txt"

pytestmark = pytest.mark.skipif(FIX is None, reason="no mertools-features fixture")


def reference(modality: str) -> dict[str, np.ndarray]:
    """Every MERTools feature file of a modality, by clip name."""
    files = sorted((FIX / "mertools" / "features" / modality).glob("*.npy"))
    assert files, f"no reference files for {modality}"
    return {f.stem: np.load(f) for f in files}


def report(what: str, diff: dict) -> None:
    """One line per comparison (`pytest -s` shows them): the largest l2 and max differences."""
    worst = {k: max(d[k] for d in diff.values()) for k in ("l2", "max")}
    cos = min(d["cos"] for d in diff.values())
    print(f"{what}: l2 {worst['l2']:.2g} max {worst['max']:.2g} min cos {cos:.4f}")


def compare(features, ref: dict[str, np.ndarray]) -> dict[str, dict]:
    """name -> l2 (relative), max (largest element difference / largest reference element),
    cos, ratio (least-squares scale of ours onto MERTools')."""
    got = dict(zip(features.names, features.features, strict=True))
    assert set(got) == set(ref), "every reference file has a clip, and no other clip"
    out = {}
    for name, b in ref.items():
        a = got[name].astype(np.float64)
        b = b.astype(np.float64)
        out[name] = {
            "l2": float(np.linalg.norm(a - b) / np.linalg.norm(b)),
            "max": float(np.abs(a - b).max() / np.abs(b).max()),
            "cos": float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)),
            "ratio": float(a @ b / (b @ b)),
        }
    return out


def shard(path: Path, names: list[str], videos: Path | None = None) -> Path:
    paths = [str(videos / f"{n}.mp4") if videos else f"/none/{n}" for n in names]
    pd.DataFrame({"name": names, "path": paths}).to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------- acoustic


@pytest.fixture(scope="module")
def acoustic(tmp_path_factory):
    """Both recipes on the fixture's wavs (its audio index points at them)."""
    tmp = tmp_path_factory.mktemp("mt_acoustic")
    ref = reference("acoustic")
    names = sorted(ref)
    index = tmp / "audio.csv"
    pd.DataFrame(
        {
            "name": names,
            "wav": [str(FIX / "inputs" / "wavs" / f"{n}.wav") for n in names],
            "valid": True,
            "reason": "",
            "duration": 0.0,
            "detail": "",
        }
    ).to_csv(index, index=False)
    sh = shard(tmp / "shard.csv", names)
    out = {}
    for recipe in ("mertools", "mersemi"):
        h5 = tmp / f"{recipe}.h5"
        params = {"model_dir": str(FIX / "models" / "hubert"), "device": "cpu",
                  "batch_size": 4, "recipe": recipe}  # fmt: skip
        run_stage("acoustic", {"shard": str(sh), "audio_index": str(index), "out": str(h5),
                               "params": json.dumps(params)})  # fmt: skip
        out[recipe] = compare(read_features(h5, modality="acoustic"), ref)
        report(f"acoustic {recipe}", out[recipe])
    return out


def test_acoustic_mertools_equals_mertools(acoustic):
    diff = acoustic["mertools"]
    assert len(diff) == 5
    assert all(d["l2"] <= TOL for d in diff.values()), diff
    # The largest element of u310 (2000 frames, 22 % padding) differs by ~1.2e-5 of the largest
    # one: MERTools' own float32 mean over the frames rounds by that much (we sum in float64).
    assert all(d["max"] <= 2 * TOL for d in diff.values()), diff


def test_acoustic_mersemi_differences(acoustic):
    """mersemi: mean (not sum) of the last 4 per-layer outputs, the last before the final
    LayerNorm, so not a multiple of MERTools'; > 10 s: per-chunk normalisation, masked chunks
    and a merged tail instead of zero-padded 10 s chunks."""
    diff = acoustic["mersemi"]
    for name, d in diff.items():
        assert d["l2"] > 0.5, (name, d)  # not the same numbers
        assert abs(d["ratio"] - 0.25) > 0.05, (name, d)  # and not 0.25 x MERTools' either
        if name in ("u015", "u070", "u098"):  # <= 10 s: the same frames, other layers
            assert 0.98 < d["cos"] < 0.9999, (name, d)
        else:  # > 10 s: chunking and padding differ as well
            assert d["cos"] < 0.98, (name, d)


# --------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    """Both recipes on the fixture's transcripts.csv (name,chinese), read as the stage reads
    the ASR stage's CSV."""
    tmp = tmp_path_factory.mktemp("mt_text")
    ref = reference("text")
    transcripts = FIX / "inputs" / "transcripts.csv"
    names = pd.read_csv(transcripts, dtype=str)["name"].tolist()
    assert sorted(names) == sorted(ref)
    sh = shard(tmp / "shard.csv", names)
    out = {}
    for recipe in ("mertools", "mersemi"):
        h5 = tmp / f"{recipe}.h5"
        params = {"model_dir": str(FIX / "models" / "baichuan2"), "trust_remote_code": True,
                  "device": "cpu", "batch_size": 4, "text_col": "chinese",
                  "recipe": recipe}  # fmt: skip
        run_stage("text", {"shard": str(sh), "transcripts": str(transcripts), "out": str(h5),
                           "params": json.dumps(params)})  # fmt: skip
        out[recipe] = compare(read_features(h5, modality="text"), ref)
        report(f"text {recipe}", out[recipe])
    return out


def test_text_mertools_equals_mertools(text):
    diff = text["mertools"]
    assert len(diff) == 6
    assert all(d["l2"] <= TOL and d["max"] <= TOL for d in diff.values()), diff


def test_text_mersemi_differences(text):
    """mersemi: mean of the last 4 layers (MERTools sums: exactly 0.25 x), and s02's leading,
    trailing and double spaces collapsed before tokenising (other tokens, other vector)."""
    for name, d in text["mersemi"].items():
        if name == "s02":
            assert d["cos"] < 0.9, d
        else:
            assert d["ratio"] == pytest.approx(0.25, abs=1e-6) and d["cos"] > 1 - 1e-6, (name, d)


# --------------------------------------------------------------------------- visual


def write_crops(path: Path, crops: dict[str, np.ndarray]) -> None:
    """A faces-stage crops file holding the given RGB crops."""
    names = list(crops)
    offsets = np.cumsum([0] + [len(crops[n]) for n in names])
    size = next(iter(crops.values())).shape[1]
    str_t = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as h5:
        h5["crops"] = np.concatenate([crops[n] for n in names])
        h5["frame"] = np.concatenate([np.arange(len(crops[n])) for n in names])
        h5["offsets"] = offsets
        h5.create_dataset("names", data=names, dtype=str_t)
        h5["valid"] = np.ones(len(names), bool)
        h5.create_dataset("reason", data=[""] * len(names), dtype=str_t)
        h5.attrs.update(backend="fixture", size=size, params="{}", n_clips=len(names))


def mertools_crops() -> dict[str, np.ndarray]:
    """MERTools' face-step arrays (BGR, as cv2.imread gave them) as RGB."""
    folder = FIX / "mertools" / "openface_face"
    return {
        d.name: np.load(d / f"{d.name}.npy")[..., ::-1].copy() for d in sorted(folder.iterdir())
    }


def run_visual(tmp: Path, sh: Path, faces: Path, recipe: str):
    out = tmp / f"visual-{recipe}-{faces.stem}.h5"
    params = {"checkpoint": str(FIX / "models" / "clip"), "device": "cpu", "batch_size": 32,
              "recipe": recipe}  # fmt: skip
    run_stage("visual", {"shard": str(sh), "faces": str(faces), "out": str(out),
                         "params": json.dumps(params)})  # fmt: skip
    return read_features(out, modality="visual")


def test_visual_on_mertools_crops(tmp_path):
    """The visual stage alone, on MERTools' own crops: equal under both recipes on CPU (they
    differ in precision on CUDA only: fp32 vs bf16 autocast)."""
    crops = mertools_crops()
    ref = reference("visual")
    assert sorted(crops) == sorted(ref)
    faces = tmp_path / "faces.h5"
    write_crops(faces, crops)
    sh = shard(tmp_path / "shard.csv", list(crops))
    for recipe in ("mertools", "mersemi"):
        diff = compare(run_visual(tmp_path, sh, faces, recipe), ref)
        report(f"visual on MERTools' crops, {recipe}", diff)
        assert all(d["l2"] <= TOL and d["max"] <= TOL for d in diff.values()), (recipe, diff)


# --------------------------------------------------------------------------- faces -> visual


@pytest.fixture(scope="module")
def openface_exe():
    from helpers.openface import built_or_skip

    return built_or_skip()


@pytest.fixture(scope="module")
def end_to_end(openface_exe, tmp_path_factory):
    """faces (OpenFace, CLNF) -> visual from the fixture's videos, per recipe (mersemi at
    112 px, to compare crops; its default is 224)."""
    from mersemi.extract.crops import open_crops

    mp = pytest.MonkeyPatch()
    mp.setenv("OPENBLAS_CORETYPE", "Haswell")  # the fixture's OpenBLAS kernels (see top)
    tmp = tmp_path_factory.mktemp("mt_faces")
    names = sorted(mertools_crops())
    sh = shard(tmp / "shard.csv", names, FIX / "inputs" / "videos")
    out = {}
    for recipe, extra in (("mertools", {}), ("mersemi", {"size": 112})):
        faces = tmp / f"faces-{recipe}.h5"
        params = {"backend": "openface", "openface_bin": str(openface_exe),
                  "openface_model": CLNF, "recipe": recipe, **extra}  # fmt: skip
        run_stage("faces", {"shard": str(sh), "out": str(faces), "params": json.dumps(params)})
        cf = open_crops(faces)
        with h5py.File(faces, "r") as h5:
            crops, frames = h5["crops"][:], h5["frame"][:]
        o = cf.offsets
        got = {n: (crops[o[i] : o[i + 1]], frames[o[i] : o[i + 1]]) for i, n in enumerate(names)}
        out[recipe] = (got, run_visual(tmp, sh, faces, recipe), cf)
    mp.undo()
    return out


def test_faces_mertools_crops_equal_mertools(end_to_end):
    """Every frame, failed ones as all-zero crops, 112 px, masked: pixel-identical."""
    got, _, cf = end_to_end["mertools"]
    assert cf.valid.all() and cf.size == 112
    for name, ref in mertools_crops().items():
        crops, frames = got[name]
        assert crops.shape == ref.shape, name
        assert frames.tolist() == list(range(len(ref)))
        np.testing.assert_array_equal(crops, ref, err_msg=name)
    zero = [i for i, c in enumerate(got["hopper_cut"][0]) if not c.any()]
    assert zero == list(range(30, 36))  # frames 31-36 (1-based): no face, success 0


def test_faces_to_visual_mertools_equals_mertools(end_to_end):
    _, feats, _ = end_to_end["mertools"]
    diff = compare(feats, reference("visual"))
    report("faces -> visual mertools", diff)
    assert all(d["l2"] <= TOL and d["max"] <= TOL for d in diff.values()), diff


def test_faces_to_visual_mersemi_differences(end_to_end):
    """mersemi: unmasked crops of the successful frames only. At 112 px they equal MERTools'
    inside its mask; hopper_cut loses its 6 failed frames; the features differ (cos ~0.98)."""
    got, feats, _ = end_to_end["mersemi"]
    for name, ref in mertools_crops().items():
        crops, frames = got[name]
        ok = np.array([c.any() for c in ref])
        assert len(crops) == ok.sum() == len(frames), name
        inside = ref[ok] > 0
        np.testing.assert_array_equal(crops[inside], ref[ok][inside], err_msg=name)
        assert (crops[~inside] > 0).mean() > 0.5  # the masked-out part is kept
    assert len(got["hopper_cut"][0]) == 64
    diff = compare(feats, reference("visual"))
    report("faces -> visual mersemi (112 px)", diff)
    assert all(0.9 < d["cos"] < 0.999 for d in diff.values()), diff
