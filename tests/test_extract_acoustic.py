import json

import numpy as np
import pandas as pd
import pytest
from helpers.tiny_models import SR, tiny_model, tone, write_audio_index, write_shard

from mersemi.errors import InputError
from mersemi.extract.acoustic import Params
from mersemi.extract.acoustic.speech import SpeechEmbedder, split_chunks
from mersemi.extract.cli import run_stage
from mersemi.store import read_features


@pytest.fixture(scope="module")
def embedder():
    """recipe mersemi: per-chunk normalisation, masked chunks, mean of layers."""
    return SpeechEmbedder(
        Params(model_dir=str(tiny_model("hubert")), batch_size=4, recipe="mersemi")
    )


@pytest.fixture(scope="module")
def mt_embedder():
    return SpeechEmbedder(Params(model_dir=str(tiny_model("hubert")), batch_size=4))


def test_split_chunks_10s_and_tail_rule():
    sec = lambda s: np.zeros(int(s * SR), np.float32)  # noqa: E731
    lens = lambda s: [len(c) / SR for c in split_chunks(sec(s), SR, 10.0, 1.0)]  # noqa: E731
    assert lens(4.0) == [4.0]
    assert lens(10.0) == [10.0]
    assert lens(23.5) == [10.0, 10.0, 3.5]
    assert lens(20.5) == [10.0, 10.5]  # a 0.5 s tail joins the previous chunk
    wave = np.arange(int(25.3 * SR), dtype=np.float32)
    assert np.array_equal(np.concatenate(split_chunks(wave, SR, 10.0, 1.0)), wave)


def test_dims_and_batched_equals_single(embedder):
    waves = [tone(220, 1.3), tone(440, 0.4, seed=1), tone(300, 23.7, seed=2), tone(500, 3.0)]
    batched = embedder.embed(waves)
    assert batched.shape == (4, 32) and batched.dtype == np.float32
    single = np.stack([embedder.embed([w])[0] for w in waves])
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=1e-4)


def test_mertools_batched_equals_single(mt_embedder):
    """recipe mertools: short clips share a masked batch, 10 s chunks of several clips share
    an unmasked one; neither changes a clip's vector."""
    waves = [tone(220, 1.3), tone(440, 0.4, seed=1), tone(300, 23.7, seed=2), tone(500, 12.0)]
    batched = mt_embedder.embed(waves)
    single = np.stack([mt_embedder.embed([w])[0] for w in waves])
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=1e-4)


def test_long_audio_is_processed_in_10s_chunks(embedder):
    wave = tone(330, 25.0, seed=3)
    whole = embedder.embed([wave])[0]
    # Frame-weighted mean of the chunk vectors = the time mean over all chunk frames.
    chunks = split_chunks(wave, SR, 10.0, 1.0)
    frames = [int(embedder.model._get_feat_extract_output_lengths(len(c))) for c in chunks]
    per_chunk = embedder.embed(chunks)
    expected = (per_chunk * np.asarray(frames)[:, None]).sum(0) / sum(frames)
    np.testing.assert_allclose(whole, expected, atol=1e-5, rtol=1e-4)
    unchunked = SpeechEmbedder(
        Params(model_dir=str(tiny_model("hubert")), chunk_seconds=30.0, recipe="mersemi")
    ).embed([wave])[0]
    assert not np.allclose(whole, unchunked, atol=1e-4)


def test_stage_end_to_end(tmp_path):
    a = tone(220, 2.0)
    index = write_audio_index(
        tmp_path / "audio" / "shard-0000",
        {
            "a": a,
            "a_again": a,
            "b": tone(880, 12.5, seed=5),
            "静音": "no_audio",  # invalid in the audio index: reason carried over
            "short": np.zeros(100, np.float32),  # 6 ms: too short for the model
            "corrupt": b"RIFF\x00\x00garbage",
        },
    )
    shard = write_shard(tmp_path / "shard.csv", ["a", "a_again", "b", "静音", "short", "corrupt"])
    out = tmp_path / "acoustic" / "shard-0000.h5"
    run_stage(
        "acoustic",
        {
            "shard": str(shard),
            "out": str(out),
            "audio_index": str(index),
            "params": {"model_dir": str(tiny_model("hubert")), "workers": 2},
        },
    )
    fs = read_features(out, modality="acoustic")
    assert list(fs.names) == ["a", "a_again", "b", "静音", "short", "corrupt"]
    assert fs.features.shape == (6, 32)
    assert fs.valid.tolist() == [True, True, True, False, False, False]
    np.testing.assert_array_equal(fs.features[0], fs.features[1])  # same input, same vector
    assert not np.allclose(fs.features[0], fs.features[2])  # different input, different
    assert not fs.features[3:].any()
    assert fs.meta.dim == 32 and "last 4" in fs.meta.layers
    params = dict(fs.meta.params)
    assert params["model_dir"] == str(tiny_model("hubert"))
    assert params["chunk_seconds"] == 10.0 and "batch_size" not in params
    reasons = pd.read_csv(out.with_name("shard-0000.reasons.csv"), keep_default_na=False)
    assert reasons.set_index("name")["reason"].to_dict() == {
        "a": "",
        "a_again": "",
        "b": "",
        "静音": "no_audio",
        "short": "empty_audio",
        "corrupt": "decode_error",
    }
    json.dumps(params)  # attrs stay JSON


def test_missing_model_dir_names_the_key(tmp_path):
    with pytest.raises(InputError, match="model_dir"):
        SpeechEmbedder(Params())
    with pytest.raises(InputError, match="model_dir"):
        SpeechEmbedder(Params(model_dir=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json"):
        SpeechEmbedder(Params(model_dir=str(tmp_path / "empty")))
