"""A tiny Baichuan2 model directory made from the upstream remote-code fixture (unedited).

    build_tiny_baichuan(out_dir, fixture_dir, seed=0) -> out_dir

Copies the fixture's Python files and JSON configs byte for byte, shrinks `config.json`,
trains a small SentencePiece `tokenizer.model` on a few Chinese and English lines, and writes
random weights of the upstream `BaichuanForCausalLM` in the sharded
`pytorch_model-0000N-of-0000M.bin` + `pytorch_model.bin.index.json` layout, as the real
download has them. The fixture (shared/fixtures/baichuan2-remote-code) is never written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from shared_fixtures import shared_fixture

SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
         "num_hidden_layers": 3, "model_max_length": 256}  # fmt: skip
LINES = [
    "今天天气很好，我们去公园散步吧！",
    "我真的很生气，你为什么不早点告诉我？",
    "他听到这个消息以后非常惊讶。",
    "别担心，一切都会好起来的。",
    "这部电影让我很难过，哭了好久。",
    "哈哈，太好笑了，我快笑死了。",
    "The weather is nice today, let's take a walk.",
    "I am really angry, why didn't you tell me earlier?",
    "你好，世界。Hello, world! 123 4567 89",
    "我们明天早上八点在学校门口见面，不要迟到了。",
]


def fixture_dir() -> Path | None:
    return shared_fixture(
        "baichuan2-remote-code", "modeling_baichuan.py", "MERSEMI_BAICHUAN_FIXTURE"
    )


def train_tokenizer(out: Path, vocab_size: int = 400) -> Path:
    import sentencepiece as spm

    corpus = out / "corpus.txt"
    corpus.write_text("\n".join(LINES * 20) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out / "tokenizer"), vocab_size=vocab_size,
        model_type="bpe", character_coverage=1.0, byte_fallback=True, unk_id=0, bos_id=1,
        eos_id=2, pad_id=-1, minloglevel=2,
    )  # fmt: skip
    corpus.unlink()
    (out / "tokenizer.vocab").unlink()
    return out / "tokenizer.model"


def build_tiny_baichuan(
    out: Path, fixture: Path, seed: int = 0, shards: int = 2, sizes: dict | None = None
) -> Path:
    """`sizes` overrides SMALL (e.g. the real 13B widths at a reduced depth, for benchmarks)."""
    import torch
    from transformers import AutoConfig
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for f in fixture.iterdir():
        if f.suffix in (".py", ".json"):
            shutil.copyfile(f, out / f.name)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(train_tokenizer(out)))
    config = json.loads((fixture / "config.json").read_text(encoding="utf-8"))
    config |= SMALL | (sizes or {}) | {"vocab_size": sp.get_piece_size()}
    (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

    cfg = AutoConfig.from_pretrained(out, trust_remote_code=True)
    cls = get_class_from_dynamic_module("modeling_baichuan.BaichuanForCausalLM", str(out))
    torch.manual_seed(seed)
    model = cls(cfg)
    with torch.no_grad():  # upstream init (std 0.02) makes every layer nearly the identity
        for p in model.parameters():
            p.normal_(0, 0.2 if p.dim() > 1 else 0.05).add_(1.0 if p.dim() == 1 else 0.0)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    keys = list(state)
    weight_map, total = {}, 0
    for i in range(shards):
        part = keys[i * len(keys) // shards : (i + 1) * len(keys) // shards]
        name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        torch.save({k: state[k] for k in part}, out / name)
        weight_map |= dict.fromkeys(part, name)
        total += sum(state[k].numel() * state[k].element_size() for k in part)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2))
    return out
