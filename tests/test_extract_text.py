import numpy as np
import pandas as pd
import pytest
from helpers.tiny_models import tiny_model, write_shard

from mersemi.errors import InputError
from mersemi.extract.cli import run_stage
from mersemi.extract.text import Params
from mersemi.extract.text.llm import TextEmbedder
from mersemi.store import read_features

SENTENCES = [
    "今天天气很好。",
    "我真的很生气！",
    "你好",
    "他说：“我不知道你在说什么，真的。”",
    "OK，没问题",
]


@pytest.fixture(scope="module", params=["mertools", "mersemi"])
def embedder(request):
    return TextEmbedder(
        Params(model_dir=str(tiny_model("llm")), batch_size=3, recipe=request.param)
    )


def test_dims_and_batched_equals_single(embedder):
    vecs, counts = embedder.embed(SENTENCES)
    assert vecs.shape == (5, 32) and vecs.dtype == np.float32
    assert counts.tolist() == [7, 7, 2, 18, 6]  # characters, no <s>
    single = np.stack([embedder.embed([s])[0][0] for s in SENTENCES])
    np.testing.assert_allclose(vecs, single, atol=1e-5, rtol=1e-4)


def test_last_four_layers_over_tokens_without_specials(embedder):
    """mersemi: mean of the tuple's last 4 over the tokens without <s>; mertools: sum of the
    last 4 of MERTools' set (layer inputs, then the output after the final norm) over the
    tokens MERTools' probe finds (here [1:], the probe drops <s>)."""
    import torch

    if embedder.params.recipe == "mertools":
        assert (embedder.start, embedder.end) == (1, None)
    enc = embedder.tokenizer(["你好"], return_tensors="pt")
    assert enc["input_ids"][0, 0].item() == embedder.tokenizer.bos_token_id
    with torch.no_grad():
        out = embedder.model(**enc, output_hidden_states=True)
    hs = out.hidden_states
    if embedder.params.recipe == "mersemi":
        expected = torch.stack(hs[-4:]).mean(0)[0, 1:].mean(0).numpy()
    else:
        mt = (*hs[-4:-1], out.last_hidden_state)  # hs[-1]: see test_extract_hidden.py
        expected = torch.stack(mt).sum(0)[0, 1:].mean(0).numpy()
    np.testing.assert_allclose(embedder.embed(["你好"])[0][0], expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("recipe", ["mertools", "mersemi"])
def test_stage_end_to_end(tmp_path, recipe):
    names = ["a", "b", "a_again", "empty", "spaces"]
    texts = ["今天天气很好。", "我真的很生气！", "今天天气很好。", "", "   "]
    shard = write_shard(tmp_path / "shard.csv", names)
    transcripts = tmp_path / "asr.csv"
    pd.DataFrame({"name": names, "text": texts, "source": "asr"}).to_csv(transcripts, index=False)
    out = tmp_path / "text" / "shard-0000.h5"
    run_stage(
        "text",
        {
            "shard": str(shard),
            "out": str(out),
            "transcripts": str(transcripts),
            "params": {"model_dir": str(tiny_model("llm")), "recipe": recipe},
        },
    )
    fs = read_features(out, modality="text")
    assert fs.features.shape == (5, 32)
    assert fs.meta.params["recipe"] == recipe
    # mersemi strips "   " to nothing; mertools feeds it verbatim, but this tokenizer makes no
    # content token of it (MERTools' mean of no token: zeros)
    assert fs.valid.tolist() == [True, True, True, False, False]
    np.testing.assert_array_equal(fs.features[0], fs.features[2])
    assert not np.allclose(fs.features[0], fs.features[1])
    assert not fs.features[3:].any()
    assert fs.meta.params["trust_remote_code"] is False
    reasons = pd.read_csv(out.with_name("shard-0000.reasons.csv"), keep_default_na=False)
    assert set(reasons.loc[~reasons["valid"], "reason"]) == {"empty_transcript"}


def test_transcripts_must_cover_the_shard(tmp_path):
    shard = write_shard(tmp_path / "shard.csv", ["a", "b"])
    transcripts = tmp_path / "asr.csv"
    pd.DataFrame({"name": ["a"], "text": ["你好"]}).to_csv(transcripts, index=False)
    with pytest.raises(InputError, match="missing"):
        run_stage(
            "text",
            {
                "shard": str(shard),
                "out": str(tmp_path / "t.h5"),
                "transcripts": str(transcripts),
                "params": {"model_dir": str(tiny_model("llm"))},
            },
        )


def test_missing_model_dir_names_the_key(tmp_path):
    with pytest.raises(InputError, match="model_dir"):
        TextEmbedder(Params())
    with pytest.raises(InputError, match="model_dir"):
        TextEmbedder(Params(model_dir=str(tmp_path / "absent")))


def test_a_clip_the_asr_stage_could_not_read_keeps_its_reason(tmp_path):
    """A broken video reaches the text stage as an empty transcript; its reason is the ASR
    stage's (decode_error), not empty_transcript."""
    names = ["ok", "broken", "silent_speech"]
    shard = write_shard(tmp_path / "shard.csv", names)
    transcripts = tmp_path / "asr" / "shard-0000.csv"
    transcripts.parent.mkdir()
    pd.DataFrame({"name": names, "text": ["你好。", "", ""], "source": "asr"}).to_csv(
        transcripts, index=False
    )
    pd.DataFrame(
        {"name": names, "valid": [True, False, False],
         "reason": ["", "decode_error", "empty_transcript"], "detail": ""}
    ).to_csv(transcripts.with_name("shard-0000.reasons.csv"), index=False)  # fmt: skip
    out = tmp_path / "text.h5"
    run_stage("text", {"shard": str(shard), "out": str(out), "transcripts": str(transcripts),
                       "params": {"model_dir": str(tiny_model("llm"))}})  # fmt: skip
    reasons = pd.read_csv(out.with_name("text.reasons.csv"), keep_default_na=False)
    assert reasons["reason"].tolist() == ["", "decode_error", "empty_transcript"]
