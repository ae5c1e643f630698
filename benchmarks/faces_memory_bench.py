"""Peak memory of the faces stage on one long clip (issue 13: memory bounded per clip).

    python benchmarks/faces_memory_bench.py [--minutes 10] [--size 1280x720] [--max-crops 2000]
        [--no-face] [--out benchmarks/results/faces_memory_bench.json]

Makes a clip with ffmpeg's testsrc2 (a moving pattern, encoded ultrafast) with a real face
photograph (scikit-image's astronaut, 320 px) drifting over it, runs `mersemi extract faces`
on it in a child process with the shipped MER2024 options (`max_frames: 0`, i.e. every frame,
size 224) and reports the child's peak RSS, wall time and the crops kept. With a face in every
frame, max_crops crops are held (2000 at 224 px: 301 MB); `--no-face` measures the decoding
side alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from mersemi.ffmpeg_bin import ffmpeg_exe

REPO = Path(__file__).resolve().parents[1]


def face_png(tmp: Path) -> Path:
    """The astronaut's face and shoulders at 320 px: large enough for Haar detection in HD."""
    import skimage.data

    face = skimage.data.astronaut()[0:240, 110:350].astype(np.uint8)
    path = tmp / "face.png"
    Image.fromarray(face).resize((320, 320)).save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--max-crops", type=int, default=2000)
    ap.add_argument("--no-face", action="store_true", help="the pattern alone (no crop kept)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/faces_memory_bench.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="faces-mem-") as tmp:
        tmp = Path(tmp)
        clip = tmp / "long.mp4"
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
               "-f", "lavfi", "-i", f"testsrc2=size={a.size}:rate={a.fps}"]  # fmt: skip
        if not a.no_face:
            cmd += ["-loop", "1", "-framerate", str(a.fps), "-i", str(face_png(tmp))]
            cmd += ["-filter_complex", "[0][1]overlay=x='100+80*sin(t/3)':y='60+40*cos(t/5)'"]
        cmd += ["-t", str(a.minutes * 60), "-c:v", "libx264", "-preset", "ultrafast", str(clip)]
        subprocess.run(cmd, check=True)
        (tmp / "shard.csv").write_text(f"name,path\nlong,{clip}\n", encoding="utf-8")
        params = {"max_frames": 0, "size": 224, "max_crops": a.max_crops, "workers": 1}
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mersemi", "extract", "faces", "--shard", str(tmp / "shard.csv"),
             "--out", str(tmp / "faces.h5"), "--params", json.dumps(params)],
            check=True,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        with h5py.File(tmp / "faces.h5", "r") as f:
            crops, valid = int(f.attrs["n_crops"]), bool(f["valid"][0])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report = {
        "clip": {"minutes": a.minutes, "size": a.size, "fps": a.fps, "face": not a.no_face},
        "frames": int(a.minutes * 60 * a.fps),
        "params": params,
        "crops_kept": crops,
        "valid": valid,
        "peak_rss_mb": round(peak_mb),
        "wall_s": round(wall, 1),
    }
    print(json.dumps(report, indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
