"""`load_encoder(params, device)`: a CLIP image encoder from any of the three checkpoint
formats, in the manner of open_clip's `create_model` (one entry, the format decides how).

- `open_clip`: a state dict (.bin/.pt/.safetensors) or a `pretrained` tag, by
  `open_clip.create_model` (the architecture is `model_name`, registered from `model_config`);
- `openai`: OpenAI's TorchScript archive (ViT-L-14.pt), by open_clip's converter;
- `hf`: a Hugging Face CLIP directory, by transformers (`hf.py`).
"""

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from open_clip.model import build_model_from_openai_state_dict

from ...errors import InputError
from ..common import require_path
from . import Params
from .formats import checkpoint_format
from .preprocess import clip_preprocess


@dataclass
class LoadedEncoder:
    model: torch.nn.Module
    encode: Callable  # image batch -> embeddings (open_clip's encode_image)
    dim: int
    preprocess: Callable  # PIL image -> tensor
    format: str  # open_clip | openai | hf
    model_id: str  # the weights: a path, or model_name:tag


def load_openai_jit(path: Path, quick_gelu: bool = True):
    """OpenAI's TorchScript archive → an open_clip CLIP (fp32, CPU), by open_clip's own
    converter. torch.jit.load runs no pickled Python (weights_only=True cannot read it)."""
    jit = torch.jit.load(str(path), map_location="cpu")
    # attn_mask: open_clip's causal text mask, a buffer a trace of an open_clip model saves
    sd = {k: v for k, v in jit.state_dict().items() if k != "attn_mask"}
    del jit
    model = build_model_from_openai_state_dict(sd, quick_gelu=quick_gelu, cast_dtype=None)
    return model.float().eval()


def register_model_name(p: Params) -> None:
    if p.model_config:
        cfg = require_path(p.model_config, "model_config", "visual", "model config")
        if cfg.stem != p.model_name:
            raise InputError(
                f"visual: model_config {cfg} registers model {cfg.stem!r} but model_name is "
                f"{p.model_name!r}; set model_name to {cfg.stem!r}"
            )
        open_clip.add_model_config(cfg)
    if p.model_name not in open_clip.list_models():
        raise InputError(
            f"visual: unknown open_clip model {p.model_name!r}; set 'model_config' to its "
            "config JSON or use a built-in name such as 'ViT-L-14'"
        )


def load_encoder(p: Params, device) -> LoadedEncoder:
    """The encoder `p` names (`checkpoint` or `pretrained`), on `device`, in eval mode."""
    if p.checkpoint and p.pretrained:
        raise InputError("visual: set either 'checkpoint' or 'pretrained', not both")
    path = Path(p.checkpoint).expanduser() if p.checkpoint else None
    fmt = checkpoint_format(path) if path is not None and path.exists() else "open_clip"
    if fmt == "open_clip":
        register_model_name(p)
    if p.checkpoint:
        weights = str(require_path(p.checkpoint, "checkpoint", "visual", "CLIP checkpoint"))
        model_id = weights
    elif p.pretrained:
        weights = p.pretrained
        model_id = f"{p.model_name}:{p.pretrained}"
    else:
        require_path(None, "checkpoint", "visual", "CLIP checkpoint")
    try:
        if fmt == "hf":
            from .hf import HFImageEncoder, hf_preprocess  # transformers: this format only

            hf = HFImageEncoder(path, device)
            return LoadedEncoder(
                hf.model, hf, hf.dim, hf_preprocess(path, hf.image_size), fmt, model_id
            )
        if fmt == "openai":
            model = load_openai_jit(path, p.quick_gelu).to(device)
            mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
        else:
            model = open_clip.create_model(
                p.model_name,
                pretrained=weights,
                force_quick_gelu=p.quick_gelu,
                device=device,
                weights_only=True,
            )
            cfg = model.visual.preprocess_cfg
            mean, std = cfg["mean"], cfg["std"]
        model.eval()
        preprocess = clip_preprocess(model.visual.image_size[0], mean, std)
        return LoadedEncoder(
            model, model.encode_image, int(model.visual.output_dim), preprocess, fmt, model_id
        )
    except (RuntimeError, ValueError, OSError, KeyError, EOFError, pickle.UnpicklingError) as e:
        raise InputError(
            f"visual: cannot load {p.model_name} from {weights} ({fmt}): {e}"
        ) from None
