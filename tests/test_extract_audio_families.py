"""The acoustic stage's encoder families against what MERTools' own script wrote
(`shared/fixtures/mertools-zoo`, see its README): chinese-wav2vec2-large (stable layer norm),
wavlm-base (group-norm front end, no normalisation), data2vec-audio-base-960h and whisper-base
(decoder, 2 start tokens); every wav, UTTERANCE (through the stage's real I/O) and FRAME
(`embedder.frames`), CPU fp32, max|a - b| / max|b| <= 1e-5. `pytest -s` prints the figures
(docs/extraction.md, "Audio encoder families")."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mersemi.errors import InputError
from mersemi.extract.acoustic import Params
from mersemi.extract.acoustic.stage import load_embedder
from mersemi.extract.cli import run_stage
from mersemi.extract.wav import load_wave
from mersemi.fixtures.shared import max_rel_diff, shared_fixture
from mersemi.store import read_features

FIX = shared_fixture("mertools-zoo", "reference.json", "MERSEMI_MERTOOLS_ZOO_FIXTURE")
TOL = 1e-5
# MERTools' model name (the fixture's folder) -> the family the stage detects
MODELS = {
    "chinese-wav2vec2-large": "wav2vec2",
    "wavlm-base": "wavlm",
    "data2vec-audio-base-960h": "data2vec-audio",
    "whisper-base": "whisper",
}
WAVS = ("w012", "w065", "w100", "w173")

pytestmark = pytest.mark.skipif(FIX is None, reason="no mertools-zoo fixture")


def model_dir(name: str) -> str:
    return str(FIX / "models" / name)


def reference(name: str, level: str, wav: str) -> np.ndarray:
    return np.load(FIX / "mertools" / "features" / f"{name}-{level}" / f"{wav}.npy")


def run_acoustic(tmp: Path, params: dict):
    """The stage on the fixture's wavs (an audio index pointing at them) -> read_features."""
    index = tmp / "audio.csv"
    pd.DataFrame({"name": list(WAVS), "valid": True, "reason": "", "duration": 0.0,
                  "detail": "", "wav": [str(FIX / "inputs" / "wavs" / f"{w}.wav") for w in WAVS],
                  }).to_csv(index, index=False)  # fmt: skip
    shard = tmp / "shard.csv"
    pd.DataFrame({"name": list(WAVS), "path": [f"/none/{w}" for w in WAVS]}).to_csv(
        shard, index=False
    )
    out = tmp / "acoustic.h5"
    params = json.dumps({"device": "cpu", "batch_size": 4, **params})
    run_stage("acoustic", {"shard": str(shard), "audio_index": str(index), "out": str(out),
                           "params": params})  # fmt: skip
    return read_features(out, modality="acoustic")


@pytest.fixture(scope="module")
def utterances(tmp_path_factory):
    """MERTools name -> the stage's file (UTTERANCE rows by clip name, and its meta)."""
    out = {}
    for name in MODELS:
        tmp = tmp_path_factory.mktemp(name)
        fs = run_acoustic(tmp, {"model_dir": model_dir(name)})
        out[name] = (dict(zip(fs.names, fs.features, strict=True)), fs.meta)
    return out


@pytest.fixture(scope="module")
def embedders():
    return {n: load_embedder(Params(model_dir=model_dir(n), device="cpu")) for n in MODELS}


@pytest.mark.parametrize("wav", WAVS)
@pytest.mark.parametrize("name", list(MODELS))
def test_family_equals_mertools(name, wav, utterances, embedders):
    rows, _ = utterances[name]
    utt = max_rel_diff(rows[wav], reference(name, "UTT", wav))
    fra_ref = reference(name, "FRA", wav)
    frames = embedders[name].frames(load_wave(FIX / "inputs" / "wavs" / f"{wav}.wav"))
    assert frames.shape == fra_ref.shape
    fra = max_rel_diff(frames, fra_ref)
    print(f"{name} {wav}: UTT {utt:.2g} FRA {fra:.2g}")
    assert utt <= TOL and fra <= TOL, (utt, fra)


@pytest.mark.parametrize("name", list(MODELS))
def test_family_and_hidden_states_are_recorded(name, utterances):
    _, meta = utterances[name]
    p = dict(meta.params)
    assert p["family"] == MODELS[name] and p["departures"] == {}
    if name == "whisper-base":  # 2 decoder layers: 3 states, the last = last_hidden_state
        assert p["hidden_states"] == [2] and p["whisper_output"] == "decoder"
        assert "decoder last_hidden_state" in meta.layers and "chunk_seconds" not in p
    else:  # 4 layers: the last 4 of 5 states
        assert p["hidden_states"] == [1, 2, 3, 4] and p["layers"] == 4
        assert "last 4" in meta.layers and "whisper_output" not in p


def test_layers_as_indices_name_the_states(embedders):
    """A list of indices: the same as the default when it names the last 4, and for any list
    the states of the library's tuple (wavlm has no final norm: its tuple is MERTools' set)."""
    wave = load_wave(FIX / "inputs" / "wavs" / "w065.wav")
    for name in ("chinese-wav2vec2-large", "wavlm-base"):
        e = load_embedder(Params(model_dir=model_dir(name), device="cpu", layers=[-4, -3, -2, -1]))
        assert e.departures == {}
        np.testing.assert_array_equal(e.frames(wave), embedders[name].frames(wave))
    e = load_embedder(Params(model_dir=model_dir("wavlm-base"), device="cpu", layers=[0, -2]))
    assert e.indices == [0, 3] and e.departures == {"layers": [0, 3]}
    x = torch.from_numpy(e.normalize(wave))[None]
    with torch.no_grad():
        hs = e.model(x, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(e.frames(wave), (hs[0] + hs[3])[0].numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="index 5 out of range"):
        load_embedder(Params(model_dir=model_dir("wavlm-base"), device="cpu", layers=[5]))
    with pytest.raises(InputError, match="twice"):
        load_embedder(Params(model_dir=model_dir("wavlm-base"), device="cpu", layers=[4, -1]))
    with pytest.raises(InputError, match="not a hidden-state index"):
        Params(layers=[1.5]).check()


@pytest.mark.parametrize("name", list(MODELS))
def test_batched_equals_single(name, embedders):
    """Clips of several lengths in one call equal each clip alone (masked batches only where
    the family is padding-invariant, one clip per pass elsewhere; Whisper pads every clip to
    its 30 s window)."""
    e = embedders[name]
    waves = [load_wave(FIX / "inputs" / "wavs" / f"{w}.wav") for w in WAVS]
    single = np.stack([e.embed([w])[0] for w in waves])
    np.testing.assert_allclose(e.embed(waves), single, rtol=1e-5, atol=1e-6)


def test_whisper_encoder_departure(tmp_path, embedders):
    """whisper_output: encoder: the encoder's frames over the audio (50 per second, 30 s
    windows), named as a departure; MERTools' decoder vectors stay the default."""
    e = load_embedder(Params(model_dir=model_dir("whisper-base"), device="cpu",
                             whisper_output="encoder"))  # fmt: skip
    lengths = {}
    for w in WAVS:
        wave = load_wave(FIX / "inputs" / "wavs" / f"{w}.wav")
        frames = e.frames(wave)
        lengths[w] = frames.shape[0]
        assert frames.shape[1] == 32
        np.testing.assert_allclose(e.embed([wave])[0], frames.mean(0), rtol=1e-5, atol=1e-6)
    assert lengths == {"w012": 60, "w065": 325, "w100": 500, "w173": 865}
    long = np.tile(load_wave(FIX / "inputs" / "wavs" / "w173.wav"), 2)  # 34.6 s: 2 windows
    assert e.frames(long).shape == (1730, 32)
    assert embedders["whisper-base"].frames(long).shape == (2, 32)  # decoder: first 30 s
    fs = run_acoustic(tmp_path, {"model_dir": model_dir("whisper-base"),
                                 "whisper_output": "encoder"})  # fmt: skip
    p = dict(fs.meta.params)
    assert p["departures"] == {"whisper_output": "encoder"} and "encoder" in fs.meta.layers
    assert not np.allclose(fs.features[0], reference("whisper-base", "UTT", "w012"), atol=1e-3)


def test_unsupported_families_are_refused_in_one_line(tmp_path):
    funasr = tmp_path / "emotion2vec_base"
    funasr.mkdir()
    (funasr / "config.yaml").write_text("model: Emotion2vec\n")
    (funasr / "model.pt").write_bytes(b"")
    with pytest.raises(InputError, match=r"emotion2vec .* only the funasr package loads"):
        load_embedder(Params(model_dir=str(funasr)))
    with pytest.raises(InputError, match=r"model_type 'clip' is not an audio encoder family"):
        load_embedder(Params(model_dir=model_dir("clip-vit-base-patch32")))
    with pytest.raises(InputError, match=r"family='hubert' but .* model_type 'wavlm'"):
        load_embedder(Params(model_dir=model_dir("wavlm-base"), family="hubert"))


@pytest.mark.parametrize("name", list(MODELS))
def test_mersemi_recipe_runs_on_every_family(name, embedders):
    """recipe mersemi (per-chunk normalisation, masks, mean of states) on each family: its own
    numbers, one finite vector per clip of the model's width."""
    e = load_embedder(Params(model_dir=model_dir(name), device="cpu", recipe="mersemi"))
    waves = [load_wave(FIX / "inputs" / "wavs" / f"{w}.wav") for w in ("w012", "w173")]
    got = e.embed(waves)
    assert got.shape == (2, 32) and np.isfinite(got).all()
    if name != "whisper-base":  # whisper: mean of one state = MERTools' sum of it
        assert not np.allclose(got, embedders[name].embed(waves), atol=1e-3)


@pytest.mark.parametrize("name", list(MODELS))
def test_what_the_installed_tuple_means(name, embedders):
    """The stage takes the states with hooks, not from `hidden_states`; this pins what the
    installed transformers' tuple holds against them, so a release that changes it is seen:
    under 5.23 a stable-layer-norm wav2vec2 ends before the final LayerNorm (MERTools' 4.28
    tuple ended after it), the others (and Whisper's decoder) equal MERTools' set."""
    from mersemi.extract.hidden import LayerStates

    e = embedders[name]
    wave = load_wave(FIX / "inputs" / "wavs" / "w012.wav")
    with torch.no_grad():
        if name == "whisper-base":
            feats = e.extractor(wave, sampling_rate=16000, return_tensors="pt").input_features
            ids = torch.full((1, 2), e.start)
            with LayerStates(e.model.decoder.layers) as cap:
                out = e.model(feats, decoder_input_ids=ids, output_hidden_states=True)
            tuple_, final = out.decoder_hidden_states, out.last_hidden_state
        else:
            x = torch.from_numpy(e.normalize(wave))[None]
            with LayerStates(e.model.encoder.layers) as cap:
                out = e.model(x, output_hidden_states=True)
            tuple_, final = out.hidden_states, out.last_hidden_state
    ours = cap.states(final, post_norm=True)
    same = [torch.equal(a, b) for a, b in zip(tuple_, ours, strict=True)]
    if name == "chinese-wav2vec2-large":
        assert same == [True] * 4 + [False]
        assert torch.equal(cap.states(final, post_norm=False)[-1], tuple_[-1])
    else:
        assert all(same)
