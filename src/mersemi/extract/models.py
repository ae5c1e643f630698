"""Model directories and load dtypes, shared by the acoustic, ASR and text stages.

A missing model is a configuration error, never a reason to make up features: every check
names the stage, the params key to set and what was expected there.
"""

from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError
from .common import require_path


def require_model_dir(
    stage: str, key: str, value: str | None, files: Iterable[str | tuple[str, ...]]
) -> Path:
    """`value` as a directory holding `files` (a tuple entry: any one of them), else InputError."""
    path = require_path(value, key, stage, what="model directory")
    if not path.is_dir():
        raise InputError(f"extract {stage}: {key}={str(value)!r} is not a directory")
    for f in files:
        alts = (f,) if isinstance(f, str) else tuple(f)
        if not any((path / a).exists() for a in alts):
            raise InputError(
                f"extract {stage}: model directory {key}={str(value)!r} has no "
                f"{' or '.join(alts)} (see docs/extraction_models.md for the layout)"
            )
    return path


def load_dtype(device, precision: str):
    """The dtype to load weights in: bf16/fp16 on CUDA per `precision`, float32 otherwise.

    Large models are loaded in half precision (not autocast) so that 13B parameters fit."""
    # here, not at the top: check-models imports this module to report a missing torch
    import torch

    from ..device import autocast_dtype

    return autocast_dtype(device, precision) or torch.float32
