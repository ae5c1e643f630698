"""Extraction throughput: clips/s per stage, batched + prefetched vs one clip at a time.

    .venv/bin/python benchmarks/extract_bench.py [--clips 16] [--frames 24] [--real-size]
        [--stages faces,visual,audio] [--out benchmarks/results/extract_bench.json]

"One clip at a time" is the MERTools way: decode a clip, run the model on that clip's frames,
then the next clip (workers=0, span_clips=False). "Batched" decodes in worker threads while the
model runs and fills batches across clips. Model loading is excluded (models are loaded once
per shard job). Clips are made here: a face photograph (skimage astronaut) moving over a
background, with a sine-tone audio track.

By default the models are the tiny ones (`mersemi.demo.tiny`), on CPU. --real-size uses a
randomly-initialised ViT-L-14 (768-dim, the real architecture) for the visual stage; use it on
a GPU. Results go to a JSON file (benchmarks/results/ is git-ignored).

`--stages recipes` runs faces (OpenCV), visual, acoustic and text under `recipe: mertools` and
`recipe: mersemi` (docs/extraction.md) and reports clips/s of each and the largest |difference|
between their features (acoustic on wavs of 3-31 s, so MERTools' padded 10 s chunking shows).
On CPU both recipes run fp32; their precision differs on CUDA only (fp32 vs bf16).

Adding a stage: write `bench_<stage>(ctx) -> dict` returning {"batched_s": ...,
"single_s": ..., ...} (in extract_stages.py, beside the others) and add it to BENCHES; `ctx`
has the shard, the audio index, the tiny-model params and the work folder. extract_recipes.py
holds `--stages recipes`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from extract_recipes import bench_recipes
from extract_stages import (
    Context,
    bench_acoustic,
    bench_asr,
    bench_audio,
    bench_faces,
    bench_text,
    bench_text_baichuan,
    bench_visual,
    make_clips,
)

os.environ.setdefault("MERSEMI_NO_PROGRESS", "1")

# Stage name -> bench function, run in this order (later stages may use earlier outputs,
# e.g. ctx.outputs["audio"] is the audio index for acoustic/asr).
BENCHES = {
    "faces": bench_faces,
    "visual": bench_visual,
    "audio": bench_audio,
    "acoustic": bench_acoustic,
    "asr": bench_asr,
    "text": bench_text,
    "text_baichuan": bench_text_baichuan,
    "recipes": bench_recipes,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--frames", type=int, default=24, help="frames per clip (10 fps)")
    ap.add_argument(
        "--stages", default=",".join(s for s in BENCHES if s not in ("text_baichuan", "recipes"))
    )
    ap.add_argument("--real-size", action="store_true", help="real-size random architectures")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--baichuan-layers",
        type=int,
        default=3,
        help="text_baichuan: depth at the real 13B widths (40 for the real model)",
    )
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--out", default="benchmarks/results/extract_bench.json")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(stages) - set(BENCHES))
    if unknown:
        ap.error(f"unknown stage(s) {unknown}; known: {list(BENCHES)}")
    if "visual" in stages and "faces" not in stages:
        stages.insert(0, "faces")
    if {"acoustic", "asr"} & set(stages) and "audio" not in stages:
        stages.insert(0, "audio")
    results = {}
    with tempfile.TemporaryDirectory(prefix="mersemi-bench-") as tmp:
        work = Path(tmp)
        shard = make_clips(work / "clips", args.clips, args.frames)
        ctx = Context(work, shard, args.clips, args.real_size, args.device, args.baichuan_layers)
        for stage in BENCHES:
            if stage not in stages:
                continue
            r = BENCHES[stage](ctx)
            r["clips"] = args.clips
            r["batched_clips_per_s"] = args.clips / r["batched_s"]
            r["single_clips_per_s"] = args.clips / r["single_s"]
            r["speedup"] = r["single_s"] / r["batched_s"]
            results[stage] = r
            print(
                f"{stage:8s} batched {r['batched_clips_per_s']:7.2f} clips/s  "
                f"one-at-a-time {r['single_clips_per_s']:7.2f} clips/s  x{r['speedup']:.2f}",
                flush=True,
            )
    report = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "frames_per_clip": args.frames,
        "real_size": args.real_size,
        "device": str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu",
        "torch_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stages": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
