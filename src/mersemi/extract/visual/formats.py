"""Which of the three CLIP checkpoint formats a path holds, and which encoder family (no
library needed)."""

import json
import zipfile
from pathlib import Path

from ...errors import InputError

FORMATS = ("open_clip", "openai", "hf")


def checkpoint_format(path: Path) -> str:
    """'hf' (a Hugging Face CLIP directory), 'openai' (OpenAI's TorchScript archive such as
    ViT-L-14.pt) or 'open_clip' (a state dict: .bin/.pt/.safetensors)."""
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(
                f"visual: checkpoint {path} is a directory without config.json; give a Hugging "
                "Face CLIP directory (config.json + model.safetensors/pytorch_model.bin) or a file"
            )
        return "hf"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        # torch.jit.save writes code/ and constants.pkl; torch.save of a state dict does not
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return "openai"
    return "open_clip"


# config.json `model_type` -> family (`Params.family`); CLIP's two are `hf.hf_vision_config`'s
MODEL_TYPES = {
    "clip": "clip",
    "clip_vision_model": "clip",
    "dinov2": "dinov2",
    "data2vec-vision": "data2vec-vision",
    "videomae": "videomae",
}


def model_type(d: Path) -> str | None:
    """The `model_type` of a Hugging Face directory's config.json."""
    try:
        return json.loads((d / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as e:
        raise InputError(f"visual: cannot read {d / 'config.json'}: {e}") from None


def resolve_family(path: Path | None, fmt: str, family: str) -> str:
    """The encoder family of a checkpoint: `family` if given (checked against the format), else
    CLIP for a file and the config.json `model_type` of a directory."""
    if fmt != "hf":
        if family not in ("auto", "clip"):
            raise InputError(
                f"visual: family {family!r} needs a Hugging Face directory (config.json + "
                f"weights), but {path} is a {fmt} CLIP checkpoint"
            )
        return "clip"
    kind = model_type(path)
    found = MODEL_TYPES.get(kind)
    if found is None:
        raise InputError(
            f"visual: {path / 'config.json'} has model_type {kind!r}; the visual families are "
            f"{sorted(set(MODEL_TYPES.values()))} (model_type {sorted(MODEL_TYPES)})"
        )
    if family not in ("auto", found):
        raise InputError(
            f"visual: family {family!r} but {path / 'config.json'} holds a {kind!r} model; set "
            f"family to 'auto' or {found!r}"
        )
    return found
