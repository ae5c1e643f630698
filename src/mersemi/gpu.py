"""One GPU per job on a machine with several.

Snakemake's `resources: gpu=N` caps how many GPU jobs run at once but does not say which GPU
each one uses; without help every job opens the first visible device. Before a job touches
CUDA, `claim_gpu` takes the first free GPU: an exclusive `flock` on `gpu-<id>.lock` in a
lock folder shared by the machine's jobs, held until the process exits (the kernel drops it
even after kill -9), and sets `CUDA_VISIBLE_DEVICES` to that GPU alone. When every GPU is
taken it waits.

The GPUs to share: `MERSEMI_GPUS` (e.g. "0,1,2,3"), else `CUDA_VISIBLE_DEVICES` when set,
else those `nvidia-smi -L` lists. Nothing is done under SLURM (it assigns the job's GPUs
itself), with one GPU or none, after CUDA is initialised, or with `MERSEMI_GPU_SLOTS=0`.
Lock folder: `MERSEMI_GPU_LOCK_DIR`, default `/tmp/mersemi-gpus-<uid>`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

_held: dict[str, object] = {}  # gpu id -> open lock file, kept for the process's lifetime


def visible_gpus() -> list[str]:
    for var in ("MERSEMI_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(var)
        if value is not None:
            return [g.strip() for g in value.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, ln in enumerate(out.stdout.splitlines()) if ln.startswith("GPU ")]


def lock_dir() -> Path:
    return Path(os.environ.get("MERSEMI_GPU_LOCK_DIR") or f"/tmp/mersemi-gpus-{os.getuid()}")


def claim_gpu(poll: float = 2.0) -> str | None:
    """The GPU id this process now owns (CUDA_VISIBLE_DEVICES set to it), or None when
    nothing is to be chosen (see the module doc)."""
    if _held:
        return next(iter(_held))
    if os.environ.get("MERSEMI_GPU_SLOTS") == "0" or os.environ.get("SLURM_JOB_ID"):
        return None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        log.warning("CUDA already initialised: no GPU slot taken")
        return None
    gpus = visible_gpus()
    if len(gpus) <= 1:
        return None
    folder = lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for gpu in gpus:
            f = open(folder / f"gpu-{gpu}.lock", "a+")  # noqa: SIM115 - held until exit
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            _held[gpu] = f
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
            log.info("GPU %s of %s (slot lock %s)", gpu, ",".join(gpus), f.name)
            return gpu
        if not waited:
            log.info("all %d GPUs busy, waiting for one (locks in %s)", len(gpus), folder)
            waited = True
        time.sleep(poll)
