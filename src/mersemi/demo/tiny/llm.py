"""A tiny causal-LM directory in the layout of baichuan-inc/Baichuan2-13B-Base.

`save_pretrained` of a small Llama-style causal LM (config + safetensors weights, LM head
included, as in the real directory) plus a fast tokenizer that covers Chinese: one token per
character of the CJK Unified Ideographs block (U+4E00..U+9FFF), CJK punctuation, full-width
forms, general punctuation (curly quotes, dashes) and printable ASCII, with `<s>` prepended
like Llama/Baichuan tokenizers do, so that the text stage's special-token handling has
something to remove.
"""

import os
from pathlib import Path

HIDDEN_SIZE = 32
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]


def _vocab() -> list[str]:
    chars = [chr(c) for c in range(0x21, 0x7F)]  # printable ASCII without space
    chars += [chr(c) for c in range(0x2010, 0x2028)]  # dashes, curly quotes, ellipsis
    chars += [chr(c) for c in range(0x3001, 0x3040)]  # CJK symbols and punctuation
    chars += [chr(c) for c in range(0xFF01, 0xFF5F)]  # full-width forms
    chars += [chr(c) for c in range(0x4E00, 0xA000)]  # CJK unified ideographs
    return [*SPECIALS, *dict.fromkeys(chars)]


def build_tokenizer():
    """A character-level PreTrainedTokenizerFast (whitespace separates, never a token)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(_vocab())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), "isolated")]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        padding_side="right",
        model_max_length=4096,
    )


def write_tiny_llm(out: str | os.PathLike, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
