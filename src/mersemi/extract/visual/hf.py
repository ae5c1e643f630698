"""Hugging Face CLIP directories (openai/clip-vit-large-patch14 layout), via transformers.

Imported only for that format (`load.load_encoder`, `check`): transformers is needed for it
alone."""

import json
from pathlib import Path

import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from transformers import (
    CLIPConfig,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    PretrainedConfig,
)
from transformers.utils import logging as hf_logging

from ...errors import InputError
from .preprocess import clip_preprocess


def hf_preprocess(d: Path, image_size: int):
    """Mean/std/size from HF's preprocessor_config.json (OpenAI's values when absent)."""
    f = d / "preprocessor_config.json"
    cfg = json.loads(f.read_text()) if f.is_file() else {}
    return clip_preprocess(
        image_size,
        cfg.get("image_mean", OPENAI_DATASET_MEAN),
        cfg.get("image_std", OPENAI_DATASET_STD),
    )


def hf_vision_config(d: Path):
    """The vision config of a CLIP directory, with the projection size of the whole model
    (a CLIPConfig's vision_config may lack projection_dim and would default to 512)."""
    kind = PretrainedConfig.get_config_dict(str(d))[0].get("model_type")
    if kind == "clip":
        cfg = CLIPConfig.from_pretrained(d)
        vcfg = cfg.vision_config
        vcfg.projection_dim = cfg.projection_dim
        return vcfg
    if kind == "clip_vision_model":
        return CLIPVisionConfig.from_pretrained(d)
    raise InputError(
        f"visual: {d / 'config.json'} has model_type {kind!r}, not a CLIP model ('clip' or "
        "'clip_vision_model'); give the openai/clip-vit-large-patch14 directory"
    )


class HFImageEncoder:
    """transformers' CLIP vision tower + projection, called like open_clip's encode_image."""

    def __init__(self, d: Path, device):
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # its load report lists every text-tower key as unused
        try:
            self.model, info = CLIPVisionModelWithProjection.from_pretrained(
                d, config=hf_vision_config(d), dtype=torch.float32, output_loading_info=True
            )
        finally:
            hf_logging.set_verbosity(level)
        missing = [k for k in info["missing_keys"] if "position_ids" not in k]
        if missing or info.get("mismatched_keys"):
            bad = missing or [str(k) for k in info["mismatched_keys"]]
            raise ValueError(f"{len(bad)} vision weights missing or of another shape: {bad[:3]}")
        self.model.to(device).eval()
        self.dim = int(self.model.config.projection_dim)
        self.image_size = int(self.model.config.image_size)

    def __call__(self, x):
        return self.model(pixel_values=x).image_embeds
