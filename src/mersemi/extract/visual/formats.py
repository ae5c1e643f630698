"""Which of the three CLIP checkpoint formats a path holds (no library needed)."""

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
