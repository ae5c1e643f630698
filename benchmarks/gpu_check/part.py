"""What every part uses: `Part` (its results, saved after every step), `SkipPart`, the timing,
memory and FLOP helpers, the fixture lookup and the constants the report quotes. Light to
import (torch is imported inside the helpers), so the parent process reads the constants too."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CARRY = REPO / "benchmarks" / "gpu_carry"  # wheels/ and fixtures/ for a bare machine
DOCS_MODELS = REPO / "docs" / "extraction_models.md"
FIXTURES = {  # name -> (marker file, env var mersemi.fixtures.shared honours)
    "baichuan2-remote-code": ("modeling_baichuan.py", "MERSEMI_BAICHUAN_FIXTURE"),
    "wenet-u2pp-small": ("final.zip", "MERSEMI_WENET_FIXTURE"),
    "mertools-zoo": ("reference.json", "MERSEMI_MERTOOLS_ZOO_FIXTURE"),
}
BAICHUAN_LAYERS = 3  # depth of the Baichuan2-13B-shaped model (the real one has 40)
REAL_LAYERS = 40
REAL_VOCAB = 125696  # Baichuan2-13B's vocabulary (the built model's tokenizer has ~400)
# CPU vs CUDA on the small training case, fp32 both (TF32 off, torch's default for matmul)
TOLERANCE = {"loss_rel": 1e-4, "prob_abs": 1e-3}
# The OOM back-off's features against the uncapped run (different batch compositions
# and kernels in bf16: equal up to rounding)
OOM_TOLERANCE_REL = 1e-2


class SkipPart(Exception):
    """The part cannot run here (a fixture or package missing): the reason is reported."""


class Part:
    """One part's results, saved to its JSON file after every step (read back on a kill)."""

    def __init__(self, name: str, args):
        self.name, self.args = name, args
        self.deadline = args.deadline
        self.res: dict = {"rows": [], "details": {}, "skipped_steps": []}
        self.file = Path(args.part_out)

    def save(self) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.res, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, self.file)

    def row(self, **kw) -> None:
        """A table row: what, precision, batched, single, unit, peak_gpu_mb, flops_per_s
        (of the batched pass; the parent divides it by the peak of `precision`), note."""
        self.res["rows"].append(kw)
        print(f"[{self.name}] {json.dumps(kw, default=str)}", flush=True)
        self.save()

    def compare(self, what, precision, amount, unit, tb, ts, peak, flops, out, **kw) -> None:
        """The row of a stage timed batched (`tb` s, output out["b"]) and one at a time (`ts`,
        out["s"]) over `amount` units of work."""
        import numpy as np

        self.row(
            what=what,
            precision=precision,
            batched=amount / tb,
            single=amount / ts,
            unit=unit,
            peak_gpu_mb=peak,
            flops_per_s=flops / tb,
            max_abs_diff=float(np.abs(out["b"] - out["s"]).max()),
            finite=bool(np.isfinite(out["b"]).all()),  # random weights in fp16 may overflow
            **kw,
        )

    def detail(self, key: str, value) -> None:
        self.res["details"][key] = value
        self.save()

    def left(self) -> float:
        return self.deadline - time.time()

    def room(self, what: str, need_s: float) -> bool:
        """True when `need_s` seconds are left of the part's budget; else record the skip."""
        if self.left() >= need_s:
            return True
        self.res["skipped_steps"].append(
            f"{what}: needs ~{need_s:.0f} s, {max(self.left(), 0):.0f} s of the part's budget left"
        )
        self.save()
        return False


def lazy_torch():
    import torch

    return torch


def sync(dev) -> None:
    if dev.type == "cuda":
        lazy_torch().cuda.synchronize()


def timed(fn, dev) -> float:
    sync(dev)
    t0 = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t0


def reset_peak(dev) -> None:
    if dev.type == "cuda":
        torch = lazy_torch()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mb(dev) -> float | None:
    return lazy_torch().cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None


def count_flops(fn) -> int:
    """FLOPs of everything `fn` runs, counted from the operands' shapes by torch's own
    formulas (torch.utils.flop_counter: matmuls, convolutions, attention; elementwise work is
    not counted). A plain dispatch mode: FlopCounterMode's module tracker breaks under
    inference_mode and on weight-norm parametrizations."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                Count.total += int(formula(*args, **kwargs, out_val=out))
            return out

    import torch

    # Ops on inference-mode tensors bypass Python dispatch modes (nothing is counted): run
    # the counting pass (untimed) under no_grad instead.
    real = torch.inference_mode
    torch.inference_mode = torch.no_grad
    try:
        with Count():
            fn()
    finally:
        torch.inference_mode = real
    return Count.total


def precisions(dev) -> list[str]:
    return ["bf16", "fp16", "fp32"] if dev.type == "cuda" else ["fp32"]


def fixture(name: str) -> Path | None:
    marker, env = FIXTURES[name]
    for d in ([Path(os.environ[env])] if os.environ.get(env) else []) + [
        CARRY / "fixtures" / name,
        REPO.parent / "shared" / "fixtures" / name,
        REPO.parent.parent / "shared" / "fixtures" / name,
    ]:
        if (d / marker).is_file():
            return d
    return None


def rel_diff(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))
