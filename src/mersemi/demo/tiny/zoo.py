"""Tiny models of one more encoder family per modality (MERTools' feature zoo), for the demo's
two-sets-per-modality config (config.zoo.yaml) and the tests.

Each is a transformers directory written by the family's own classes with `save_pretrained`,
the layout of the real checkpoint, randomly initialised with a fixed seed:
  wavlm   WavLMModel + Wav2Vec2FeatureExtractor (microsoft/wavlm-large: layer-norm conv front
          end, stable layer norm, normalised input)              -> acoustic, family wavlm
  dinov2  Dinov2Model + BitImageProcessor (facebook/dinov2-large, at 56 px instead of 224: the
          demo's crops are 112 px)                               -> visual, family dinov2
  bert    BertModel + BertTokenizer (vocab.txt, WordPiece; the hfl/chinese-roberta-wwm-ext
          layout): one token per character of the demo's transcripts and of the tiny WeNet's
          units, plus ASCII                                      -> text, family encoder
"""

import os
from pathlib import Path

HIDDEN_SIZE = {"wavlm": 24, "dinov2": 40, "bert": 48}  # distinct dims, none the default's 32
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_tiny_wavlm(out: str | os.PathLike, seed: int = 0) -> Path:
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = WavLMConfig(
        hidden_size=HIDDEN_SIZE["wavlm"],
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=48,
        conv_dim=(16, 16, 16, 16, 16, 16, 16),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_bias=False,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        num_buckets=32,
        max_bucket_distance=100,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,
    )
    torch.manual_seed(seed)
    WavLMModel(config).eval().save_pretrained(out)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(out)
    return out


def write_tiny_dinov2(out: str | os.PathLike, seed: int = 0) -> Path:
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = Dinov2Config(
        hidden_size=HIDDEN_SIZE["dinov2"],
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=56,
        patch_size=14,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(seed)
    Dinov2Model(config).eval().save_pretrained(out)
    # facebook/dinov2-large's preprocessor_config.json, scaled: short edge 256 -> 64, crop 56.
    BitImageProcessor(
        do_resize=True,
        size={"shortest_edge": 64},
        resample=3,
        do_center_crop=True,
        crop_size={"height": 56, "width": 56},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_convert_rgb=True,
    ).save_pretrained(out)
    return out


def bert_vocab() -> list[str]:
    """[PAD] [UNK] [CLS] [SEP] [MASK], then every character of the demo's transcripts, of the
    tiny WeNet model's units and of MERTools' probe sentence (今天天气真好), then printable
    ASCII and its WordPiece continuations (BERT's basic tokenizer splits CJK characters and
    punctuation into single tokens)."""
    from ..videos import TEMPLATES, WHAT, WHO
    from .wenet import TINY_CHARS

    text = "".join(s for t in TEMPLATES.values() for s in t) + "".join(WHO + WHAT) + TINY_CHARS
    text += "今天天气真好"
    chars = sorted(set(text.replace("{who}", "").replace("{what}", "")) - {" "})
    ascii_ = [chr(c) for c in range(0x21, 0x7F) if not chr(c).isupper()]  # lower-cased input
    chars += ascii_ + [f"##{c}" for c in ascii_ if c.isalnum()]  # "ok" = "o" "##k"
    return [*BERT_SPECIALS, *dict.fromkeys(chars)]


def write_tiny_bert(out: str | os.PathLike, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vocab_file = out / "vocab.txt"
    vocab_file.write_text("".join(f"{t}\n" for t in bert_vocab()), encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(vocab_file), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE["bert"],
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    BertModel(config).eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


WRITERS = {"wavlm": write_tiny_wavlm, "dinov2": write_tiny_dinov2, "bert": write_tiny_bert}
# The stage that reads each, and its feature dim.
MODALITY = {"wavlm": "acoustic", "dinov2": "visual", "bert": "text"}
