"""Decode video frames with ffmpeg (ffmpeg-python), without ffprobe.

imageio-ffmpeg ships no ffprobe, so stream facts come from ffmpeg's own stderr:
`probe` runs `ffmpeg -i X -map 0:v:0 -c copy -f null -` (no decoding) and reads the input's
stream list and the copied frame count; `decode_frames` runs one decode to raw RGB on a pipe
(sampled frames picked by a `select` filter) and reads the output size from stderr.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ffmpeg_bin import ffmpeg_exe
from .common import ClipFailure

_FRAME_RE = re.compile(r"frame=\s*(\d+)")
_DUR_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_OUT_SIZE_RE = re.compile(r"Video: rawvideo[^\n]*?, (\d{1,5})x(\d{1,5})")


@dataclass(frozen=True)
class ProbeInfo:
    has_video: bool
    has_audio: bool
    n_frames: int  # video packets copied (≈ frames); 0 if unknown or no video
    duration: float | None  # container duration in seconds, if ffmpeg printed one


def _last_line(err: str) -> str:
    lines = [ln.strip() for ln in err.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no message)"


def probe(path: str | Path, timeout: float = 600) -> ProbeInfo:
    """Stream facts of a media file. Unreadable files raise ClipFailure('decode_error')."""
    path = Path(path)
    if not path.is_file():
        raise ClipFailure("missing_file", str(path))
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)]
    cmd += ["-map", "0:v:0?", "-c", "copy", "-f", "null", "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClipFailure("decode_error", f"ffmpeg probe timed out after {timeout:.0f} s") from None
    err = proc.stderr.decode("utf-8", "replace")
    head = err.split("Output #0", 1)[0] if "Output #0" in err else err
    streams = [ln for ln in head.splitlines() if ln.strip().startswith("Stream #")]
    has_video = any(": Video:" in ln and "attached pic" not in ln for ln in streams)
    has_audio = any(": Audio:" in ln for ln in streams)
    if proc.returncode != 0 or not streams:
        raise ClipFailure("decode_error", _last_line(err))
    m = _DUR_RE.search(head)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None
    frames = _FRAME_RE.findall(err) if has_video else []
    return ProbeInfo(has_video, has_audio, int(frames[-1]) if frames else 0, duration)


def sample_indices(n_frames: int, max_frames: int) -> np.ndarray | None:
    """Indices of at most `max_frames` frames spread uniformly over n_frames (None: take all)."""
    if max_frames <= 0 or n_frames <= max_frames:
        return None
    return np.unique(np.linspace(0, n_frames - 1, max_frames).round().astype(np.int64))


def decode_frames(
    path: str | Path, max_frames: int = 0, max_side: int = 0, timeout: float = 600
) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 F×H×W×3 RGB, source frame indices F).

    max_frames > 0 keeps at most that many frames, uniformly spread; max_side > 0 downscales
    so the longer side is at most max_side (never upscales). Raises ClipFailure for files
    without video ('no_video') or that decode to nothing ('decode_error').
    """
    import ffmpeg

    info = probe(path, timeout)
    if not info.has_video:
        raise ClipFailure("no_video", "no video stream")
    idx = sample_indices(info.n_frames, max_frames)
    stream = ffmpeg.input(str(path)).video
    if idx is not None:
        stream = stream.filter("select", "+".join(f"eq(n,{i})" for i in idx))
    if max_side > 0:
        m = int(max_side)
        stream = stream.filter(
            "scale",
            w=f"if(gte(iw,ih),min(iw,{m}),-2)",
            h=f"if(gte(iw,ih),-2,min(ih,{m}))",
        )
    out_kw = {"format": "rawvideo", "pix_fmt": "rgb24", "fps_mode": "passthrough"}
    args = stream.output("pipe:", **out_kw).global_args("-hide_banner", "-nostdin")
    cmd = args.compile(cmd=ffmpeg_exe())
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClipFailure(
            "decode_error", f"ffmpeg decode timed out after {timeout:.0f} s"
        ) from None
    err = proc.stderr.decode("utf-8", "replace")
    size = _OUT_SIZE_RE.search(err.split("Output #0", 1)[-1])
    if size is None:
        raise ClipFailure("decode_error", _last_line(err))
    w, h = int(size[1]), int(size[2])
    n = len(proc.stdout) // (w * h * 3)
    if n == 0:
        raise ClipFailure("decode_error", f"no frame decoded: {_last_line(err)}")
    frames = np.frombuffer(proc.stdout, dtype=np.uint8, count=n * w * h * 3).reshape(n, h, w, 3)
    if idx is None:
        src = np.arange(n, dtype=np.int64)
    else:
        src = idx[:n] if n <= len(idx) else np.arange(n, dtype=np.int64)
    return frames, src
