"""peak: bf16 / fp16 / fp32 matrix products, the yardstick of every '% peak'."""

from __future__ import annotations

from .part import Part, lazy_torch, precisions, timed


def run(P: Part, dev) -> None:
    torch = lazy_torch()
    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        info |= {
            "gpu": props.name,
            "gpu_memory_gb": props.total_memory / 2**30,
            "capability": list(torch.cuda.get_device_capability(0)),
            "multiprocessors": props.multi_processor_count,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        }
    P.detail("device_info", info)
    n = 8192 if dev.type == "cuda" else (256 if P.args.smoke else 2048)
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    peak = {}
    for name in precisions(dev):
        a = torch.randn(n, n, device=dev, dtype=dtypes[name])
        b = torch.randn(n, n, device=dev, dtype=dtypes[name])
        for _ in range(3):
            a @ b
        reps = 3  # the best of 5 timings of 3 products: a peak, not a mean
        t = min(timed(lambda a=a, b=b: [a @ b for _ in range(3)], dev) for _ in range(5))
        peak[name] = 2 * n**3 * reps / t
        P.row(
            what=f"matmul {n}x{n}x{n}",
            precision=name,
            batched=peak[name] / 1e12,
            unit="TFLOP/s",
            note="the peak each '% peak' divides by",
        )
        del a, b
    P.detail("peak_flops", peak)
