"""One random CLIP written in the three on-disk formats the visual stage reads.

- open_clip: `torch.save(model.state_dict())` (open_clip_pytorch_model.bin)
- openai:    a TorchScript archive of the whole model, fp16 weights, as OpenAI's `ViT-L-14.pt`
             (`torch.jit.trace` of the model; OpenAI scripted theirs, the state dict keys are
             the same because open_clip kept OpenAI's module names)
- hf:        a Hugging Face CLIPModel directory (config.json, model.safetensors,
             preprocessor_config.json) as `openai/clip-vit-large-patch14`, converted by the key
             mapping of transformers' convert_clip_original_pytorch_to_hf.py (q/k/v split from
             in_proj, projections transposed)

The weights are rounded to fp16 first, so all three hold exactly the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

# ViT-L/14's input geometry (224 px, patch 14) and head width (64, which OpenAI's converter
# assumes), at a size a 2-core CI runs in seconds.
SMALL_NAME = "mersemi-test-vit-l14-geometry"
SMALL_CONFIG = {
    "embed_dim": 64,
    "quick_gelu": True,
    "vision_cfg": {
        "image_size": 224,
        "layers": 2,
        "width": 128,
        "head_width": 64,
        "patch_size": 14,
    },
    "text_cfg": {"context_length": 77, "vocab_size": 1000, "width": 64, "heads": 1, "layers": 1},
}


def make_model(name: str, seed: int = 0, config_dir: Path | None = None):
    """A random open_clip CLIP (QuickGELU), weights rounded to fp16 values, eval mode."""
    import open_clip

    if name == SMALL_NAME:
        cfg = Path(config_dir) / f"{SMALL_NAME}.json"
        cfg.write_text(json.dumps(SMALL_CONFIG))
        open_clip.add_model_config(cfg)
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None, force_quick_gelu=True, device="cpu")
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
    return model.eval()


def write_open_clip(model, path: Path) -> Path:
    torch.save(model.state_dict(), path)
    return path


def write_openai_jit(model, path: Path) -> Path:
    size = model.visual.image_size[0]
    image = torch.zeros(1, 3, size, size)
    text = torch.zeros(1, model.context_length, dtype=torch.long)
    with torch.no_grad():
        traced = torch.jit.trace(model, (image, text), check_trace=False, strict=False)
    traced.half()  # OpenAI ships fp16 weights
    torch.jit.save(traced, str(path))
    return path


def _split_attn(sd: dict, src: str, dst: str) -> dict:
    w, b = sd[f"{src}.attn.in_proj_weight"], sd[f"{src}.attn.in_proj_bias"]
    out = {}
    for name, wi, bi in zip(("q", "k", "v"), w.chunk(3), b.chunk(3), strict=True):
        out[f"{dst}.self_attn.{name}_proj.weight"] = wi
        out[f"{dst}.self_attn.{name}_proj.bias"] = bi
    pairs = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2",
             "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}  # fmt: skip
    for a, h in pairs.items():
        for k in ("weight", "bias"):
            out[f"{dst}.{h}.{k}"] = sd[f"{src}.{a}.{k}"]
    return out


def to_hf_state_dict(sd: dict, vision_layers: int, text_layers: int) -> dict:
    out = {
        "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
        "visual_projection.weight": sd["visual.proj"].T.contiguous(),
        "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "text_projection.weight": sd["text_projection"].T.contiguous(),
        "logit_scale": sd["logit_scale"],
    }
    for k in ("weight", "bias"):
        out[f"vision_model.pre_layrnorm.{k}"] = sd[f"visual.ln_pre.{k}"]
        out[f"vision_model.post_layernorm.{k}"] = sd[f"visual.ln_post.{k}"]
        out[f"text_model.final_layer_norm.{k}"] = sd[f"ln_final.{k}"]
    for i in range(vision_layers):
        out |= _split_attn(
            sd, f"visual.transformer.resblocks.{i}", f"vision_model.encoder.layers.{i}"
        )
    for i in range(text_layers):
        out |= _split_attn(sd, f"transformer.resblocks.{i}", f"text_model.encoder.layers.{i}")
    return out


def write_hf(model, out_dir: Path) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    v, t = model.visual, model.transformer
    vw, tw = v.conv1.out_channels, model.ln_final.weight.shape[0]
    vl, tl = len(v.transformer.resblocks), len(t.resblocks)
    cfg = CLIPConfig(
        projection_dim=int(v.output_dim),
        vision_config=dict(
            hidden_size=vw, intermediate_size=4 * vw, num_attention_heads=vw // 64,
            num_hidden_layers=vl, image_size=v.image_size[0], patch_size=v.patch_size[0],
            hidden_act="quick_gelu", layer_norm_eps=1e-5,
        ),
        text_config=dict(
            hidden_size=tw, intermediate_size=4 * tw, num_attention_heads=max(tw // 64, 1),
            num_hidden_layers=tl, vocab_size=model.vocab_size,
            max_position_embeddings=model.context_length, hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        ),
    )  # fmt: skip
    hf = CLIPModel(cfg).eval()
    sd = to_hf_state_dict(model.state_dict(), vl, tl)
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing), (missing, unexpected)
    hf.save_pretrained(out_dir)
    CLIPImageProcessor().save_pretrained(out_dir)  # OpenAI's preprocessing (its defaults)
    return out_dir


def write_all(model, root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    return {
        "open_clip": write_open_clip(model, root / "open_clip_pytorch_model.bin"),
        "openai": write_openai_jit(model, root / "ViT-L-14.pt"),
        "hf": write_hf(model, root / "clip-vit-large-patch14"),
    }


def crops(size: int) -> np.ndarray:
    """Real face crops (the astronaut) at the faces stage's size, plus a flat and a noise one."""
    import cv2
    from extract_media import face_frames

    f = face_frames(3)[:, 10:210, 10:210]
    faces = [cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA) for x in f]
    rng = np.random.default_rng(0)
    other = [np.full((size, size, 3), 128, np.uint8), rng.integers(0, 256, (size, size, 3))]
    return np.stack(faces + [o.astype(np.uint8) for o in other])


def features(files, name, sizes=(112, 224)):
    out = {}
    for fmt, path in files.items():
        from mersemi.extract.visual import Params as VisualParams
        from mersemi.extract.visual.encoder import ClipEncoder

        p = VisualParams(model_name=name, checkpoint=str(path), device="cpu", workers=0)
        enc = ClipEncoder(p)
        assert enc.format == fmt
        out[fmt] = {s: enc.encode(enc.prepare(crops(s))) for s in sizes}
        out[fmt]["pixels"] = np.stack([t.numpy() for t in enc.prepare(crops(112))])
        out[fmt]["dim"] = enc.dim
    return out
