"""Device choice, threads, seeding, autocast (the GPU claim and autocast from `mersemi.device`,
shared with the extraction stages)."""

import logging
import os
import random

import numpy as np
import torch

from ..device import autocast as device_autocast
from ..errors import InputError
from ..gpu import claim_gpu

log = logging.getLogger(__name__)


def setup(params) -> torch.device:
    """Seed everything, set CPU threads and pick the device (auto: CUDA when available)."""
    if params.device in ("auto", "cuda"):
        claim_gpu()  # several GPUs on the machine: this job takes a free one
    threads = params.threads if params.threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    seed_all(params.seed)
    if params.device == "cuda" and not torch.cuda.is_available():
        raise InputError("--params: device=cuda but no CUDA device is available")
    name = (
        params.device
        if params.device != "auto"
        else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    device = torch.device(name)
    log.info("device %s, %d CPU thread(s), seed %d", device, threads, params.seed)
    return device


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when `enabled` (`amp`), else none (and nothing logged on CPU)."""
    return device_autocast(device, "bf16" if enabled and device.type == "cuda" else "fp32")
