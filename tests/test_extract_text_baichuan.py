"""The text stage on a Baichuan2 directory made from the upstream remote code (unedited):
the tokenizer workaround, the base model whatever auto_map names, errors, OOM back-off."""

import logging
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.tiny_models import write_shard

from mersemi.errors import InputError
from mersemi.extract.cli import run_stage
from mersemi.extract.text import Params, check_model
from mersemi.extract.text.llm import TextEmbedder
from mersemi.fixtures.baichuan import LINES, build_tiny_baichuan, fixture_dir
from mersemi.store import read_features

TEXTS = ["今天天气很好，我们去公园散步吧！", "你好，世界。Hello, world!", "别担心。", "哈哈"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    fixture = fixture_dir()
    if fixture is None:
        pytest.skip("no Baichuan2 fixture (shared/fixtures/baichuan2-remote-code)")
    return build_tiny_baichuan(tmp_path_factory.mktemp("bc") / "Baichuan2-tiny", fixture)


def params(model_dir, **kw) -> Params:
    """recipe mersemi (what `direct` computes); mertools on Baichuan2: test_extract_mertools."""
    kw.setdefault("recipe", "mersemi")
    return Params(model_dir=str(model_dir), trust_remote_code=True, device="cpu", **kw)


@pytest.fixture(scope="module")
def embedder(model_dir):
    return TextEmbedder(params(model_dir, batch_size=3))


def test_token_ids_are_sentencepieces(embedder, model_dir):
    """The upstream tokenizer class (through the workaround) gives SentencePiece's own ids:
    Chinese punctuation, mixed scripts, digits, emoji, repeated spaces, nothing added."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_dir / "tokenizer.model"))
    texts = [*LINES, *TEXTS, "😀 表情 ŉ", "  多个   空格 ", "“引号”《书名》……——"]
    for t in texts:
        assert embedder.tokenizer(t)["input_ids"] == sp.encode(t), t
    assert type(embedder.tokenizer).__mro__[1].__module__.startswith("transformers_modules")
    assert embedder.tokenizer.pad_token == "<unk>" and embedder.special_ids == [1, 2]


def direct(model_dir, text: str, layers: int = 4, max_tokens: int | None = None) -> np.ndarray:
    """Last-`layers` hidden states of the upstream causal LM's base model, mean over tokens."""
    import sentencepiece as spm
    from transformers import AutoModelForCausalLM

    ids = spm.SentencePieceProcessor(model_file=str(model_dir / "tokenizer.model")).encode(text)
    ids = ids[:max_tokens] if max_tokens else ids
    full = AutoModelForCausalLM.from_pretrained(
        model_dir, trust_remote_code=True, dtype=torch.float32
    )
    with torch.no_grad():
        hs = full.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    return torch.stack(hs[-layers:]).mean(0)[0].mean(0).detach().numpy()


def test_features_equal_a_direct_computation_batched_or_not(embedder, model_dir):
    batched, counts = embedder.embed(TEXTS)
    single = np.stack([embedder.embed([t])[0][0] for t in TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(batched[0], direct(model_dir, TEXTS[0]), atol=1e-5, rtol=1e-4)
    assert embedder.dim == 64 and counts[3] == len(embedder.tokenizer(TEXTS[3])["input_ids"])
    assert type(embedder.model).__name__ == "BaichuanModel"  # no LM head loaded


def test_stage_end_to_end_empty_and_long_text(model_dir, tmp_path, caplog):
    """Through `mersemi extract text`: empty text is invalid (empty_transcript); a text longer
    than max_tokens keeps its first max_tokens tokens (logged)."""
    long = "".join(LINES)
    names, texts = ["a", "empty", "long"], [TEXTS[0], "", long]
    shard = write_shard(tmp_path / "shard.csv", names)
    transcripts = tmp_path / "asr.csv"
    pd.DataFrame({"name": names, "text": texts, "source": "asr"}).to_csv(transcripts, index=False)
    out = tmp_path / "text.h5"
    p = {"model_dir": str(model_dir), "trust_remote_code": True, "max_tokens": 24,
         "recipe": "mersemi"}  # fmt: skip
    with caplog.at_level(logging.WARNING):
        run_stage("text", {"shard": str(shard), "out": str(out),
                           "transcripts": str(transcripts), "params": p})  # fmt: skip
    fs = read_features(out, modality="text")
    assert fs.valid.tolist() == [True, False, True] and not fs.features[1].any()
    np.testing.assert_allclose(fs.features[2], direct(model_dir, long, max_tokens=24), atol=1e-5)
    assert "1 transcript(s) truncated to 24 tokens" in caplog.text


def test_out_of_memory_halves_the_batch_and_retries(model_dir, caplog, monkeypatch):
    e = TextEmbedder(params(model_dir, batch_size=4))
    expected, _ = e.embed(TEXTS)
    forward = e._forward

    def small_batches_only(texts):
        if len(texts) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(texts)

    monkeypatch.setattr(e, "_forward", small_batches_only)
    with caplog.at_level(logging.WARNING):
        got, _ = e.embed(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-4)
    assert e.batch_size == 1 and caplog.text.count("batch size halved") == 2

    monkeypatch.setattr(e, "_forward", lambda texts: small_batches_only([*texts, *texts]))
    with pytest.raises(InputError, match="out of GPU memory with one sentence"):
        e.embed(TEXTS[:1])


def broken_copy(model_dir, tmp_path, case: str):
    d = tmp_path / f"Baichuan2-{case}"  # a new name: its remote code is imported afresh
    shutil.copytree(model_dir, d)
    if case == "no_tokenizer":
        (d / "tokenizer.model").unlink()
    elif case == "no_weights":
        for f in d.glob("pytorch_model*"):
            f.unlink()
    elif case == "missing_shard":
        (d / "pytorch_model-00002-of-00002.bin").unlink()
    return d


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("no_tokenizer", "cannot load the tokenizer"),
        ("no_weights", "no weights"),
        ("missing_shard", "names missing weight file(s) ['pytorch_model-00002-of-00002.bin']"),
        ("untrusted", "ships its own code"),
        ("no_accelerate", "accelerate"),
        ("no_sentencepiece", "pip install sentencepiece"),
    ],
)
def test_each_broken_directory_is_one_line(model_dir, tmp_path, monkeypatch, case, says):
    d = broken_copy(model_dir, tmp_path, case)
    p = params(d)
    if case == "untrusted":
        p.trust_remote_code = False
    elif case == "no_accelerate":  # the remote code imports it at module level
        monkeypatch.setitem(sys.modules, "accelerate", None)
    elif case == "no_sentencepiece":
        monkeypatch.setitem(sys.modules, "sentencepiece", None)
    with pytest.raises(InputError) as e:
        TextEmbedder(p)
    msg = str(e.value)
    assert says in msg and str(d) in msg and " -> " in msg and "\n" not in msg
    # the model check names the same problem before any job is queued
    failed = [c for c in check_model(p) if not c.ok]
    assert len(failed) == 1 and says in failed[0].detail + failed[0].fix


def test_check_model_passes_and_reports_the_dim(model_dir):
    checks = check_model(params(model_dir))
    assert all(c.ok for c in checks), checks
    dim = next(c for c in checks if c.item == "dim")
    assert dim.detail.startswith("64") and "5120" in dim.detail


def test_memory_plans_need_a_gpu_and_their_packages(model_dir):
    with pytest.raises(InputError, match="memory: int8 needs a CUDA GPU"):
        TextEmbedder(params(model_dir, memory="int8"))
    with pytest.raises(InputError, match="memory must be one of"):
        TextEmbedder(params(model_dir, memory="huge"))
