"""CLIP checkpoint formats on full-size ViT-L/14: same features? load and check times.

    .venv/bin/python benchmarks/clip_formats_bench.py [--small] [--out FILE.json]

One random ViT-L/14 (QuickGELU, weights rounded to fp16 values) is written as an open_clip
state dict, OpenAI-style TorchScript (fp16) and a Hugging Face CLIP directory
(mersemi.fixtures.clip_formats); each is loaded by the visual stage on CPU and encodes the same
crops (astronaut faces at 112 and 224 px, a flat and a noise image). Reports the max |difference| to
the open_clip features (absolute and relative to the feature norm), load time, `check_model`
time, and encode time per frame. Exit status 1 if a format is outside the test's tolerance
(1e-6 relative for TorchScript, 1e-4 for HF). Needs ~5 GB RAM and ~4.5 GB in the temp dir;
--small uses the CI test's reduced model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TOL = {"open_clip": 0.0, "openai": 1e-6, "hf": 1e-4}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/clip_formats_bench.json")
    a = ap.parse_args()

    import torch

    from mersemi.extract.visual import Params as VisualParams
    from mersemi.extract.visual import check_model
    from mersemi.extract.visual.encoder import ClipEncoder
    from mersemi.fixtures.clip_formats import SMALL_NAME, crops, make_model, write_all

    name = SMALL_NAME if a.small else "ViT-L-14"
    rows, ok_all = [], True
    with tempfile.TemporaryDirectory(prefix="clipfmt-bench-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        model = make_model(name, config_dir=tmp)
        files = write_all(model, tmp / "w")
        write_s = time.perf_counter() - t
        del model
        extra = {"model_config": str(tmp / f"{SMALL_NAME}.json")} if a.small else {}
        x = {s: crops(s) for s in (112, 224)}
        ref = None
        for fmt, path in files.items():
            p = VisualParams(model_name=name, checkpoint=str(path), device="cpu", workers=0)
            if a.small:
                p.model_config = extra["model_config"]
            t = time.perf_counter()
            checks = check_model({**extra, "model_name": name, "checkpoint": str(path)})
            check_s = time.perf_counter() - t
            t = time.perf_counter()
            enc = ClipEncoder(p)
            load_s = time.perf_counter() - t
            t = time.perf_counter()
            f = {s: enc.encode(enc.prepare(v)) for s, v in x.items()}
            enc_s = (time.perf_counter() - t) / sum(len(v) for v in x.values())
            ref = ref or f
            diff = max(float(np.abs(f[s] - ref[s]).max()) for s in x)
            norm = max(float(np.linalg.norm(ref[s], axis=1).max()) for s in x)
            within = diff <= TOL[fmt] * norm
            ok_all &= within
            row = {"format": fmt, "path": path.name, "dim": enc.dim, "max_abs_diff": diff,
                   "max_rel_diff": diff / norm, "tolerance_rel": TOL[fmt], "within": within,
                   "check_model_ok": all(c.ok for c in checks), "check_model_s": check_s,
                   "load_s": load_s, "encode_s_per_frame": enc_s}  # fmt: skip
            rows.append(row)
            print(
                f"{fmt:>9}: dim {enc.dim}, max|diff| {diff:.2e} ({diff / norm:.1e} of |f|, "
                f"{'ok' if within else 'OUT OF TOLERANCE'}), check {check_s:.1f} s, "
                f"load {load_s:.1f} s, encode {1000 * enc_s:.0f} ms/frame"
            )
            del enc
    report = {"bench": "clip_formats_bench", "model": name, "write_s": write_s,
              "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
              "rows": rows}  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"writing the three formats took {write_s:.0f} s; saved {a.out}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
