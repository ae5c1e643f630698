"""A tiny randomly-initialised open_clip model in the on-disk format the visual stage reads.

Format (the same for the real ViT-L/14, minus the config file, which open_clip ships):
  <dir>/<name>.json   open_clip model config (embed_dim, vision_cfg, text_cfg), registered with
                      `open_clip.add_model_config`; the file stem is the model name
  <dir>/<name>.pt     state dict of the whole CLIP model (torch.save), loaded by
                      `open_clip.create_model_and_transforms(name, pretrained=<path>)`

`write_tiny_clip` returns the visual stage's params for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...atomic import atomic_path

TINY_CLIP_NAME = "mersemi-tiny-vit"

# A small ViT with the same structure as ViT-L-14 (patch embedding, class token, pre/post
# LayerNorm, attention pooling off, projection to embed_dim), 64×64 input.
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1},
}


def write_tiny_clip(out_dir, seed: int = 0) -> dict:
    """Write the tiny model into out_dir; return {'model_name', 'model_config', 'checkpoint'}."""
    import open_clip
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / f"{TINY_CLIP_NAME}.json"
    ckpt_path = out_dir / f"{TINY_CLIP_NAME}.pt"
    with atomic_path(cfg_path) as tmp:
        tmp.write_text(json.dumps(TINY_CLIP_CONFIG, indent=2) + "\n", encoding="utf-8")
    open_clip.add_model_config(cfg_path)
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None, device="cpu")
    with atomic_path(ckpt_path) as tmp:
        torch.save(model.state_dict(), tmp)
    return {
        "model_name": TINY_CLIP_NAME,
        "model_config": str(cfg_path),
        "checkpoint": str(ckpt_path),
    }
