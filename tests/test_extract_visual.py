import json

import numpy as np
import pytest

from mersemi.cli import main
from mersemi.demo.tiny.clip import TINY_CLIP_CONFIG, write_tiny_clip
from mersemi.errors import InputError
from mersemi.extract.cli import run_stage
from mersemi.extract.common import reasons_path
from mersemi.extract.faces import Params as FacesParams
from mersemi.extract.visual import Params as VisualParams
from mersemi.extract.visual.encoder import ClipEncoder
from mersemi.fixtures.media import make_media, write_shard
from mersemi.store import read_features


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("visual")
    clips = make_media(root / "media")
    shard = write_shard(root / "shard.csv", clips)
    faces = root / "faces.h5"
    run_stage(
        "faces",
        {
            "shard": shard,
            "out": faces,
            "params": FacesParams(max_frames=4, size=64, recipe="mersemi"),
        },
    )
    model = write_tiny_clip(root / "models" / "clip")
    return root, shard, faces, model


def test_tiny_features_valid_flags_and_attrs(setup, tmp_path):
    root, shard, faces, model = setup
    out = tmp_path / "visual" / "shard-0000.h5"
    rc = main(
        ["extract", "visual", "--shard", str(shard), "--faces", str(faces), "--out", str(out)]
        + ["--params", json.dumps({**model, "batch_size": 3})]
    )
    assert rc == 0
    fs = read_features(out, modality="visual")
    dim = TINY_CLIP_CONFIG["embed_dim"]
    assert fs.features.shape == (7, dim) and fs.meta.dim == dim
    v = dict(zip(fs.names, fs.valid, strict=True))
    assert [n for n in fs.names if not v[n]] == ["noface", "corrupt", "missing"]
    np.testing.assert_array_equal(fs.features[~fs.valid], 0)
    f = dict(zip(fs.names, fs.features, strict=True))
    # the same video under two names gives the same vector; a different face a different one
    np.testing.assert_allclose(f["face"], f["面孔_中文"], atol=1e-6)
    assert np.abs(f["face"] - f["face2"]).max() > 1e-3
    assert fs.meta.model == model["checkpoint"]
    assert fs.meta.params["faces"]["max_frames"] == 4 and "batch_size" not in fs.meta.params
    assert reasons_path(out).is_file()


def test_batched_equals_one_clip_at_a_time(setup, tmp_path):
    _, shard, faces, model = setup
    enc = ClipEncoder(VisualParams(**model))
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    run_stage(
        "visual",
        {
            "shard": shard,
            "faces": faces,
            "out": a,
            "params": VisualParams(**model, batch_size=5),
            "encoder": enc,
        },
    )
    run_stage(
        "visual",
        {
            "shard": shard,
            "faces": faces,
            "out": b,
            "params": VisualParams(**model, span_clips=False, workers=0),
            "encoder": enc,
        },
    )
    fa, fb = read_features(a), read_features(b)
    np.testing.assert_allclose(fa.features, fb.features, rtol=1e-4, atol=1e-5)
    assert fa.meta.digest == fb.meta.digest  # batching is not a parameter of the numbers


def test_missing_model_is_a_clear_error(setup, tmp_path):
    _, shard, faces, model = setup
    out = tmp_path / "x.h5"
    with pytest.raises(InputError, match="params key 'checkpoint'"):
        run_stage("visual", {"shard": shard, "faces": faces, "out": out, "params": VisualParams()})
    with pytest.raises(InputError, match="does not exist"):
        run_stage(
            "visual",
            {
                "shard": shard,
                "faces": faces,
                "out": out,
                "params": VisualParams(**{**model, "checkpoint": "/no/w.pt"}),
            },
        )
    with pytest.raises(InputError, match="set model_name to 'mersemi-tiny-vit'"):
        run_stage(
            "visual",
            {
                "shard": shard,
                "faces": faces,
                "out": out,
                "params": VisualParams(**{**model, "model_name": "other"}),
            },
        )
    with pytest.raises(InputError, match="unknown open_clip model"):
        run_stage(
            "visual",
            {
                "shard": shard,
                "faces": faces,
                "out": out,
                "params": VisualParams(model_name="Nope-1", checkpoint="x"),
            },
        )
    assert not out.exists()


def test_crops_must_match_the_shard(setup, tmp_path):
    root, _, faces, model = setup
    other = tmp_path / "s.csv"
    other.write_text("name,path,split,label,shard\nzz,/x.mp4,train,,0\n", encoding="utf-8")
    with pytest.raises(InputError, match="rerun the faces stage"):
        run_stage(
            "visual",
            {
                "shard": other,
                "faces": faces,
                "out": tmp_path / "x.h5",
                "params": VisualParams(**model),
            },
        )
