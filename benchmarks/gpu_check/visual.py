"""visual: open_clip ViT-L-14 (random weights, an open_clip checkpoint) through ClipEncoder."""

from __future__ import annotations

import time
from pathlib import Path

from .part import Part, count_flops, peak_mb, precisions, reset_peak, timed


def run(P: Part, dev) -> None:
    import numpy as np

    from mersemi.device import autocast_dtype
    from mersemi.extract.common import MeanPool, SpanningBatcher
    from mersemi.extract.visual import Params as VisualParams
    from mersemi.extract.visual.encoder import ClipEncoder
    from mersemi.fixtures.random_models import visual_model

    smoke, work = P.args.smoke, Path(P.args.work)
    t0 = time.perf_counter()
    model = visual_model(work, real_size=not smoke)
    enc = ClipEncoder(VisualParams(**model, device=str(dev)))
    P.detail(
        "model",
        {
            "name": model["model_name"],
            "dim": enc.dim,
            "params_m": sum(p.numel() for p in enc.model.visual.parameters()) / 1e6,
            "build_and_load_s": time.perf_counter() - t0,
        },
    )
    rng = np.random.default_rng(0)
    n_clips, lo, hi = (6, 2, 6) if smoke else (48, 8, 40)
    frames = [
        enc.prepare(rng.integers(0, 256, (int(rng.integers(lo, hi + 1)), 224, 224, 3), np.uint8))
        for _ in range(n_clips)
    ]
    total = sum(len(f) for f in frames)
    bs = 64

    def batched():
        pool, b = MeanPool(n_clips, enc.dim), SpanningBatcher(bs)
        for i, units in enumerate(frames):
            for owners, batch in b.add(i, units):
                pool.add(owners, enc.encode(batch))
        for owners, batch in b.flush():
            pool.add(owners, enc.encode(batch))
        return pool.mean()

    def single():
        return np.stack([enc.encode(f).mean(0) for f in frames])

    flops = count_flops(lambda: enc.encode(frames[0][:1])) * total  # per frame x frames
    P.detail("flops_per_frame", flops / total)
    for prec in precisions(dev):
        if not P.room(f"visual {prec}", 8 if not smoke else 2):
            break
        enc.p.precision = prec
        enc.encode((frames[0] * (bs // len(frames[0]) + 1))[:bs])  # warm-up at the batch size
        reset_peak(dev)
        out = {}
        tb = timed(lambda o=out: o.update(b=batched()), dev)
        peak = peak_mb(dev)
        ts = timed(lambda o=out: o.update(s=single()), dev)
        P.compare(
            f"visual {model['model_name']}",
            prec,
            total,
            "frames/s",
            tb,
            ts,
            peak,
            flops,
            out,
            note=f"{n_clips} clips, {total} frames; batch {bs} across clips vs one clip "
            f"per call; autocast {autocast_dtype(dev, prec)}",
        )
