"""LLaMA's slow SentencePiece tokenizer as transformers 4.28 had it (MERTools' `use_fast=False`).

A LLaMA / Chinese-Alpaca-2 directory may ship only `tokenizer.model`. transformers 5 has no
slow `LlamaTokenizer`: `AutoTokenizer` converts the model to a fast tokenizer, which needs the
`protobuf` package, and that conversion does not give 4.28's ids for a sentence that starts
with a space (measured on the mertools-zoo fixture, protobuf 7.36.2: ` 说实话  我…` -> 4.28
`<s> ▁▁ 说实话 ▁▁ 我 …`, 5.23's fast `<s> ▁说实话 ▁▁ 我 …`, feature cosine 0.68 to MERTools';
docs/extraction.md, "Text encoder families"). This class is 4.28's slow tokenizer on 5.x's
SentencePiece backend, with only the `sentencepiece` package:

- text between special tokens goes to `sp_model.encode` as it is (4.28 had no `legacy`
  switch: its behaviour is `legacy=True`, the dummy prefix kept);
- `[BOS] ids [EOS]` per the directory's `add_bos_token` (default true) and `add_eos_token`
  (default false), read from tokenizer_config.json;
- decoding joins SentencePiece runs around special tokens as 4.28 did (the probe's decode).
"""

from __future__ import annotations

import json
from pathlib import Path

LLAMA_TOKENIZERS = {"LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer",
                    "CodeLlamaTokenizerFast"}  # fmt: skip


def is_llama_sentencepiece(path: Path, model_type: str | None) -> bool:
    """A LLaMA tokenizer backed by a SentencePiece `tokenizer.model` (its class in
    tokenizer_config.json, or no class named and a `llama` config)."""
    if not (path / "tokenizer.model").is_file():
        return False
    cfg = _config(path)
    name = cfg.get("tokenizer_class")
    return name in LLAMA_TOKENIZERS if name else model_type == "llama"


def _config(path: Path) -> dict:
    f = path / "tokenizer_config.json"
    try:
        return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}
    except (OSError, ValueError):
        return {}


def load_llama_sentencepiece(path: Path):
    """The 4.28 slow LLaMA tokenizer of `path` (its tokenizer.model and tokenizer_config.json)."""
    cfg = _config(path)
    return slow_llama_class().from_pretrained(
        str(path),
        add_bos_token=bool(cfg.get("add_bos_token", True)),
        add_eos_token=bool(cfg.get("add_eos_token", False)),
    )


def slow_llama_class() -> type:
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    class LlamaSentencePiece(SentencePieceBackend):
        vocab_files_names = {"vocab_file": "tokenizer.model"}
        model_input_names = ["input_ids", "attention_mask"]

        def __init__(self, vocab_file=None, add_bos_token=True, add_eos_token=False, **kw):
            self.add_bos_token, self.add_eos_token = add_bos_token, add_eos_token
            kw.pop("legacy", None)
            kw.pop("tokenizer_file", None)
            super().__init__(vocab_file=vocab_file, legacy=True, **kw)

        def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
            bos = [self.bos_token_id] if self.add_bos_token else []
            eos = [self.eos_token_id] if self.add_eos_token else []
            out = bos + token_ids_0 + eos
            return out if token_ids_1 is None else out + bos + token_ids_1 + eos

        def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has=False, **kw):
            if already_has or kw.get("already_has_special_tokens"):
                special = set(self.all_special_ids)
                return [int(i in special) for i in token_ids_0]
            bos, eos = [1] * self.add_bos_token, [1] * self.add_eos_token
            out = bos + [0] * len(token_ids_0) + eos
            return out if token_ids_1 is None else out + bos + [0] * len(token_ids_1) + eos

        def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None):
            return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

        def num_special_tokens_to_add(self, pair=False):
            return (self.add_bos_token + self.add_eos_token) * (2 if pair else 1)

        def convert_tokens_to_string(self, tokens):
            special = set(self.all_special_tokens)
            out, run, prev_special = "", [], False
            for i, token in enumerate(tokens):
                if token in special:
                    if not prev_special and i != 0:
                        out += " "
                    out += self.sp_model.decode(run) + token
                    prev_special, run = True, []
                else:
                    run.append(token)
                    prev_special = False
            return out + self.sp_model.decode(run)

    return LlamaSentencePiece
