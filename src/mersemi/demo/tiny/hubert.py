"""A tiny HuBERT directory: what `transformers` writes for TencentGameMate/chinese-hubert-large.

Same architecture family as the real model (layer-norm conv feature encoder with the real
kernel/stride stack, so 20 ms frames at 16 kHz; stable layer norm; attention masks honoured),
only narrow and shallow, randomly initialised with a fixed seed.
"""

import os
from pathlib import Path

HIDDEN_SIZE = 32


def write_tiny_hubert(out: str | os.PathLike, seed: int = 0) -> Path:
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = HubertConfig(
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16, 16, 16, 16, 16, 16, 16),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_bias=True,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,
    )
    torch.manual_seed(seed)
    model = HubertModel(config).eval()
    model.save_pretrained(out)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(out)
    return out
