"""Loading a WeNet runtime model (`final.zip`, TorchScript)."""

import warnings
from pathlib import Path

import torch

from ...errors import InputError
from . import STAGE

# What WeNet's C++ runtime calls; forward_attention_decoder is optional (no rescoring then).
RUNTIME_METHODS = ("forward_encoder_chunk", "ctc_activation", "subsampling_rate", "right_context")


def load_runtime_model(path: Path, device):
    """torch.jit.load of `final.zip`, checked for the methods WeNet's runtime calls."""
    zip_path = path / "final.zip"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # jit is WeNet's runtime format
            model = torch.jit.load(str(zip_path), map_location=device)
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{STAGE}: cannot load TorchScript model {zip_path}: {first}") from None
    missing = [m for m in RUNTIME_METHODS if not hasattr(model, m)]
    if missing:
        raise InputError(
            f"{STAGE}: {zip_path} has no method {missing[0]!r}: not a WeNet runtime model "
            "(export the checkpoint with python -m wenet.bin.export_jit)"
        )
    return model.eval()
