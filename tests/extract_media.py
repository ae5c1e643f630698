"""Small test videos made on the fly (shared by the test_extract_* files).

A real face photograph (skimage.data.astronaut) moving over a plain background, encoded with
ffmpeg (libx264 + AAC sine tone), a face video without audio, a video without a face, a corrupt
file, and the shard CSV that lists them.
"""

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from mersemi.ffmpeg_bin import ffmpeg_exe

W, H, FPS, N_FRAMES = 320, 240, 10, 12
DURATION = N_FRAMES / FPS
TONE_HZ = 440


def face_frames(n: int = N_FRAMES, variant: int = 0) -> np.ndarray:
    """n RGB frames: the astronaut's face (200x200 crop) moving right; variant 1 is a mirrored,
    colour-cast version (a different input for the same model)."""
    import skimage.data

    face = skimage.data.astronaut()[20:220, 120:320].astype(np.float32)
    if variant == 1:
        face = np.clip(face[:, ::-1] * np.array([0.7, 1.0, 1.3]), 0, 255)
    face = face.astype(np.uint8)
    frames = np.full((n, H, W, 3), 90, dtype=np.uint8)
    for t in range(n):
        x, y = 10 + t * 8, 10 + (t % 3) * 5
        frames[t, y : y + 200, x : x + 200] = face
    return frames


def encode(path: Path, frames: np.ndarray, audio: bool = True, fps: int = FPS) -> Path:
    n, h, w, _ = frames.shape
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency={TONE_HZ}:sample_rate=44100"]
        cmd += ["-t", f"{n / fps}", "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    return path


def make_media(root: Path) -> dict[str, Path]:
    """Write the test clips into root; return name -> path (incl. a missing and a corrupt one)."""
    root.mkdir(parents=True, exist_ok=True)
    face = encode(root / "face.mp4", face_frames())
    clips = {
        "face": face,
        "面孔_中文": root / "面孔_中文.mp4",  # same video under a non-ASCII name
        "face2": encode(root / "face2.mp4", face_frames(variant=1)),
        "silent": encode(root / "silent.mp4", face_frames(), audio=False),
        "noface": encode(root / "noface.mp4", np.full((8, 120, 160, 3), 128, np.uint8)),
        "corrupt": root / "corrupt.mp4",
        "missing": root / "missing.mp4",
    }
    clips["面孔_中文"].write_bytes(face.read_bytes())
    # A truncated file: the first kilobytes of a real video (moov atom at the end is lost).
    clips["corrupt"].write_bytes(face.read_bytes()[:2000])
    return clips


def write_shard(path: Path, clips: dict[str, Path]) -> Path:
    rows = [
        {"name": n, "path": str(p), "split": "train", "label": "happy", "shard": 0}
        for n, p in clips.items()
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
