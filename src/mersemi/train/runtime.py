"""Device choice, threads, seeding, autocast."""

import contextlib
import logging
import os
import random

import numpy as np
import torch

log = logging.getLogger(__name__)


def setup(params) -> torch.device:
    """Seed everything, set CPU threads and pick the device (auto: CUDA when available)."""
    if params.device in ("auto", "cuda"):
        from ..gpu import claim_gpu

        claim_gpu()  # several GPUs on the machine: this job takes a free one
    threads = params.threads if params.threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    seed_all(params.seed)
    if params.device == "cuda" and not torch.cuda.is_available():
        from ..errors import InputError

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
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
