"""The three CLIP checkpoint formats (open_clip state dict, OpenAI TorchScript, HF directory)
give the same features from the same weights, with the same preprocessing.

CI runs a model with ViT-L/14's geometry (224 px input, patch 14, head width 64) but 2 narrow
layers; the full-size ViT-L/14 (428 M parameters, ~4.5 GB of files, 5.2 GB RAM, ~2 min) runs
with MERSEMI_FULL_CLIP=1, and in benchmarks/clip_formats_bench.py.
Tolerance: open_clip vs TorchScript are the same network on the same fp32 weights (max abs
difference 0 expected, 1e-6 allowed); transformers' CLIP is a different implementation of it
(attention kernels, op order), allowed max abs difference 1e-4 relative to the vector norm.
"""

import os
import sys

import numpy as np
import pytest

from mersemi.errors import InputError
from mersemi.extract.visual import Params as VisualParams
from mersemi.extract.visual.encoder import ClipEncoder
from mersemi.extract.visual.formats import checkpoint_format
from mersemi.fixtures.clip_formats import SMALL_NAME, crops, make_model, write_all

FORMATS = ("open_clip", "openai", "hf")


def features(files, name, sizes=(112, 224)):
    """Per format: the encoded crops at each size, the 112 px pixels and the feature dim."""
    out = {}
    for fmt, path in files.items():
        p = VisualParams(model_name=name, checkpoint=str(path), device="cpu", workers=0)
        enc = ClipEncoder(p)
        assert enc.format == fmt
        out[fmt] = {s: enc.encode(enc.prepare(crops(s))) for s in sizes}
        out[fmt]["pixels"] = np.stack([t.numpy() for t in enc.prepare(crops(112))])
        out[fmt]["dim"] = enc.dim
    return out


def assert_same(feats, dim):
    ref = feats["open_clip"]
    assert ref["dim"] == dim
    for fmt in ("openai", "hf"):
        f = feats[fmt]
        assert f["dim"] == dim
        # identical preprocessing, bit for bit
        np.testing.assert_array_equal(f["pixels"], ref["pixels"])
        for s in (112, 224):
            a, b = f[s], ref[s]
            assert a.shape == (5, dim)
            scale = np.linalg.norm(b, axis=1, keepdims=True)
            tol = 1e-6 if fmt == "openai" else 1e-4
            assert np.abs(a - b).max() <= tol * scale.max(), (fmt, s, np.abs(a - b).max())
    # and the features tell inputs apart (the check above could pass on constant output)
    assert np.abs(ref[224][0] - ref[224][3]).max() > 1e-2


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("clipfmt")
    model = make_model(SMALL_NAME, config_dir=root)
    return write_all(model, root / "w")


def test_three_formats_agree_small(small):
    assert {f: checkpoint_format(p) for f, p in small.items()} == {f: f for f in FORMATS}
    assert_same(features(small, SMALL_NAME), 64)


def test_hf_preprocessing_matches_clip_image_processor(small):
    """The preprocessing used for every format equals HF's own: its PIL CLIPImageProcessor to
    float rounding; its default (torchvision) one to float rounding at 224 px crops and within
    3 grey levels where it resizes (its bicubic is not PIL's)."""
    from transformers.models.clip.image_processing_clip import CLIPImageProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    enc = ClipEncoder(VisualParams(checkpoint=str(small["hf"]), device="cpu"))
    level = 1 / 255 / min(enc.preprocess.transforms[-1].std)  # one grey level, normalised
    for s in (112, 224, 250):
        x = crops(s)
        ours = np.stack([t.numpy() for t in enc.prepare(x)])
        assert ours.shape == (5, 3, 224, 224)
        pil = CLIPImageProcessorPil.from_pretrained(small["hf"])
        theirs = pil(images=list(x), return_tensors="np")["pixel_values"]
        assert np.abs(ours - theirs).max() < 1e-5, s
        tv = CLIPImageProcessor.from_pretrained(small["hf"])
        theirs = tv(images=list(x), return_tensors="np")["pixel_values"]
        assert np.abs(ours - theirs).max() < (1e-5 if s == 224 else 3 * level), s


def test_hf_directory_missing_vision_weights_is_refused(small, tmp_path):
    """transformers would initialise missing weights at random; the stage refuses instead."""
    import shutil

    from safetensors.torch import load_file, save_file

    d = tmp_path / "hf"
    shutil.copytree(small["hf"], d)
    sd = load_file(d / "model.safetensors")
    del sd["vision_model.post_layernorm.weight"]
    save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(InputError, match="post_layernorm"):
        ClipEncoder(VisualParams(checkpoint=str(d), device="cpu"))


def test_bad_checkpoints_are_clear_errors(tmp_path):
    d = tmp_path / "empty_dir"
    d.mkdir()
    with pytest.raises(InputError, match="without config.json"):
        ClipEncoder(VisualParams(checkpoint=str(d), device="cpu"))
    junk = tmp_path / "ViT-L-14.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot load ViT-L-14"):
        ClipEncoder(VisualParams(checkpoint=str(junk), device="cpu"))


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("MERSEMI_FULL_CLIP"),
    reason="full-size ViT-L/14 (5 GB RAM, 4.5 GB disk): MERSEMI_FULL_CLIP=1, or "
    "benchmarks/clip_formats_bench.py",
)
def test_three_formats_agree_full_vit_l14(tmp_path):
    model = make_model("ViT-L-14")
    files = write_all(model, tmp_path)
    del model
    assert_same(features(files, "ViT-L-14", sizes=(112, 224)), 768)


def test_check_model_each_format_and_each_broken_case(small, tmp_path, monkeypatch):
    from mersemi.extract.visual import check_model

    cfg = str(next(small["open_clip"].parent.parent.glob("*.json")))
    mine = {"model_name": SMALL_NAME, "model_config": cfg}

    def failed(d):
        return [(c.item, c.detail) for c in check_model(d) if not c.ok]

    for fmt, path in small.items():
        checks = check_model({**mine, "checkpoint": str(path)})
        assert all(c.ok for c in checks), checks
        assert checks[-1].item == "dim" and checks[-1].detail == "64"
        assert any(c.item == "checkpoint" and c.detail.startswith(fmt) for c in checks)
    # the default model_name ViT-L-14 expects 768-d features
    [(item, detail)] = failed({"checkpoint": str(small["openai"])})
    assert item == "dim" and "64-d" in detail and "768" in detail
    [(item, detail)] = failed({"checkpoint": str(small["hf"])})
    assert item == "dim"
    [(item, detail)] = failed({"checkpoint": str(small["open_clip"])})  # the tensors tell
    assert item == "weights" and "ViT-L-14" in detail
    assert [i for i, _ in failed({"checkpoint": str(tmp_path / "nope.pt")})] == ["checkpoint"]
    corrupt = tmp_path / "open_clip_pytorch_model.bin"
    corrupt.write_bytes(small["open_clip"].read_bytes()[:5000])
    assert [i for i, _ in failed({**mine, "checkpoint": str(corrupt)})] == ["weights"]
    monkeypatch.setitem(sys.modules, "transformers", None)  # not installed
    [(item, _)] = failed({**mine, "checkpoint": str(small["hf"])})
    assert item == "package transformers"
