"""Device and precision, shared by the extraction stages and training (`train/runtime.py`):
the device from a name (taking a free GPU first, `mersemi.gpu`), and the autocast dtype."""

import contextlib
import logging

import torch

from .errors import InputError
from .gpu import claim_gpu

log = logging.getLogger(__name__)


def select_device(name: str = "auto", one_gpu: bool = True):
    """torch.device from 'auto' (CUDA if available), 'cpu', 'cuda' or 'cuda:N'. With 'auto' or
    'cuda' on a machine with several GPUs the job first takes a free one (`mersemi.gpu`);
    `one_gpu=False` leaves every GPU visible (a model spread over them)."""
    if one_gpu and name in ("auto", "cuda"):
        claim_gpu()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise InputError(f"device {name!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available")
    return dev


def autocast_dtype(device, precision: str = "auto"):
    """The autocast dtype for a device, or None for full fp32."""
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise InputError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    if device.type != "cuda" or precision == "fp32":
        if precision in ("bf16", "fp16") and device.type != "cuda":
            log.info("precision %s ignored on %s: running fp32", precision, device)
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def autocast(device, precision: str = "auto"):
    """Context manager: torch.autocast on CUDA with bf16/fp16, a no-op in fp32 / on CPU."""
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
