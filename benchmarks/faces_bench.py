"""Faces stage: seconds per frame, OpenFace 2.2 backend vs OpenCV Haar backend.

    .venv/bin/python benchmarks/faces_bench.py [--clips 4] [--frames 50] [--sizes 320x240,640x480]
        [--openface-bin PATH] [--out benchmarks/results/faces_bench.json]

Clips are made here: the astronaut's face moving over a background (as mersemi.fixtures.media),
every frame kept (max_frames 0), crops of 224 px. Each backend runs the whole shard with one
clip at a time (workers=0) and with 2 clips in flight (workers=2; OpenFace runs one process per
clip). OpenFace's time includes its start and model load per clip (`startup_s`: a 1-frame clip).
Without --openface-bin the fixture's build is used (mersemi.fixtures.openface; built if needed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MERSEMI_NO_PROGRESS", "1")
REPO = Path(__file__).resolve().parents[1]


def make_clips(folder: Path, n: int, n_frames: int, w: int, h: int) -> Path:
    import cv2
    import skimage.data

    from mersemi.fixtures.media import encode, write_shard

    folder.mkdir(parents=True, exist_ok=True)
    side = int(0.6 * h)  # the face photograph takes 60 % of the frame height
    face = cv2.resize(skimage.data.astronaut()[20:220, 120:320], (side, side))
    clips = {}
    for k in range(n):
        frames = np.full((n_frames, h, w, 3), 60 + 10 * (k % 8), np.uint8)
        for t in range(n_frames):
            x = int((w - side) * t / max(n_frames - 1, 1))
            y = (h - side) // 2 + (t % 5) * 2
            frames[t, y : y + side, x : x + side] = face
        clips[f"c{k:02d}"] = encode(folder / f"c{k:02d}.mp4", frames, audio=False, fps=25)
    return write_shard(folder / "shard.csv", clips)


def timed(shard: Path, out: Path, p) -> tuple[float, int, int]:
    import h5py

    from mersemi.extract.cli import run_stage

    t = time.perf_counter()
    outcome = run_stage("faces", {"shard": shard, "out": out, "params": p})
    dt = time.perf_counter() - t
    with h5py.File(out, "r") as h5:
        n = int(h5.attrs["n_crops"])
    return dt, n, int(outcome.valid.sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--sizes", default="320x240,640x480")
    ap.add_argument("--openface-bin")
    ap.add_argument("--openface-model", default="model/main_clnf_general.txt")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/faces_bench.json")
    a = ap.parse_args()

    from mersemi.extract.faces import Params as FacesParams

    exe = a.openface_bin
    if exe is None:
        from mersemi.fixtures.openface import build, fixture_dir

        exe = str(build(fixture_dir()))
    rows = []
    with tempfile.TemporaryDirectory(prefix="faces-bench-") as tmp:
        tmp = Path(tmp)
        one = make_clips(tmp / "one", 1, 1, 320, 240)
        of = {"backend": "openface", "openface_bin": exe, "openface_model": a.openface_model}
        startup = min(timed(one, tmp / "one.h5", FacesParams(**of, workers=0))[0] for _ in range(3))
        for wh in a.sizes.split(","):
            w, h = (int(v) for v in wh.split("x"))
            shard = make_clips(tmp / wh, a.clips, a.frames, w, h)
            total = a.clips * a.frames
            for backend, extra in (("opencv", {}), ("openface", of)):
                for workers in (0, 2):
                    p = FacesParams(**{"backend": backend, **extra}, size=224, workers=workers)
                    dt, n, valid = timed(shard, tmp / f"{wh}-{backend}-{workers}.h5", p)
                    row = {"frame_size": wh, "backend": backend, "workers": workers,
                           "frames": total, "crops": n, "valid_clips": valid, "seconds": dt,
                           "ms_per_frame": 1000 * dt / total}  # fmt: skip
                    rows.append(row)
                    print(
                        f"{wh:>8} {backend:>8} workers={workers}: {row['ms_per_frame']:6.1f} "
                        f"ms/frame ({n}/{total} frames with a face, {dt:.1f} s)"
                    )
    print(f"OpenFace start + model load per clip: {startup:.2f} s")
    report = {
        "bench": "faces_bench",
        "openface_bin": exe,
        "openface_model": a.openface_model,
        "openface_startup_s": startup,
        "clips": a.clips,
        "frames_per_clip": a.frames,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "rows": rows,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"saved {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
