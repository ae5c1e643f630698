"""acoustic: HuBERT-Large from its config (random weights) through SpeechEmbedder."""

from __future__ import annotations

import time
from pathlib import Path

from .part import Part, count_flops, peak_mb, precisions, reset_peak, timed


def run(P: Part, dev) -> None:
    import numpy as np

    from mersemi.extract.acoustic import SAMPLE_RATE, Params
    from mersemi.extract.acoustic.speech import SpeechEmbedder
    from mersemi.fixtures.random_models import hubert_dir

    smoke, work = P.args.smoke, Path(P.args.work)
    t0 = time.perf_counter()
    model_dir = hubert_dir(work, real_size=not smoke)
    P.detail(
        "model",
        {
            "dir": model_dir,
            "build_s": time.perf_counter() - t0,
            "what": "tiny HuBERT" if smoke else "HuBERT-Large config, random",
        },
    )
    rng = np.random.default_rng(0)
    n, lo, hi = (6, 1.0, 3.0) if smoke else (64, 2.0, 14.0)
    waves = []
    for _ in range(n):
        t = np.arange(int(rng.uniform(lo, hi) * SAMPLE_RATE)) / SAMPLE_RATE
        w = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 400) * t) + 0.05 * rng.standard_normal(len(t))
        waves.append(w.astype(np.float32))
    seconds = sum(len(w) for w in waves) / SAMPLE_RATE
    flops = None
    for prec in precisions(dev):
        if not P.room(f"acoustic {prec}", 10 if not smoke else 2):
            break
        emb = SpeechEmbedder(Params(model_dir=model_dir, device=str(dev), precision=prec))
        emb.embed(waves[:2])  # warm-up
        if flops is None:
            emb.params.batch_size = 1
            flops = count_flops(lambda e=emb: e.embed(waves))
            P.detail("flops_per_audio_second", flops / seconds)
        out = {}
        emb.params.batch_size = 16
        reset_peak(dev)
        tb = timed(lambda e=emb, o=out: o.update(b=e.embed(waves)), dev)
        peak = peak_mb(dev)
        emb.params.batch_size = 1
        ts = timed(lambda e=emb, o=out: o.update(s=e.embed(waves)), dev)
        P.compare(
            "acoustic HuBERT" + ("" if smoke else "-Large"),
            prec,
            seconds,
            "audio-s/s",
            tb,
            ts,
            peak,
            flops,
            out,
            note=f"{n} clips, {seconds:.0f} s of audio; 16 chunks per batch vs one; weights "
            f"in {str(emb.dtype).removeprefix('torch.')}",
        )
        del emb
