"""Decode video frames with ffmpeg (ffmpeg-python), without ffprobe.

imageio-ffmpeg ships no ffprobe, so stream facts come from ffmpeg's own stderr:
`probe` runs `ffmpeg -i X -map 0:v:0 -c copy -f null -` (no decoding) and reads the input's
stream list and the copied frame count; `decode_frames` runs one decode to raw RGB on a pipe
(sampled frames picked by a `select` filter) and reads the output size from stderr.
"""

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np

from ...ffmpeg_bin import ffmpeg_exe
from ..common import ClipFailure
from ..ffmpeg import last_line

_FRAME_RE = re.compile(r"frame=\s*(\d+)")
_DUR_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_OUT_SIZE_RE = re.compile(r"Video: rawvideo[^\n]*?, (\d{1,5})x(\d{1,5})")


@dataclass(frozen=True)
class ProbeInfo:
    has_video: bool
    has_audio: bool
    n_frames: int  # video packets copied (≈ frames); 0 if unknown or no video
    duration: float | None  # container duration in seconds, if ffmpeg printed one


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
        raise ClipFailure("decode_error", last_line(err))
    m = _DUR_RE.search(head)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else None
    frames = _FRAME_RE.findall(err) if has_video else []
    return ProbeInfo(has_video, has_audio, int(frames[-1]) if frames else 0, duration)


def sample_indices(n_frames: int, max_frames: int) -> np.ndarray | None:
    """Indices of `max_frames` frames spread uniformly over n_frames (None: take all): frame n
    is kept when floor(n·m/N) steps up, i.e. n = ceil(k·N/m) for k = 0..m-1. `select_expr`
    is the same rule for ffmpeg, a constant-size expression at any m."""
    if max_frames <= 0 or n_frames <= max_frames:
        return None
    n = np.arange(n_frames, dtype=np.float64)
    step = np.floor(n * max_frames / n_frames) > np.floor((n - 1) * max_frames / n_frames)
    return np.flatnonzero(step).astype(np.int64)


def select_expr(n_frames: int, max_frames: int) -> str:
    """ffmpeg `select` expression of `sample_indices` (one `eq(n,i)` term per frame would not
    scale: ffmpeg runs out of memory parsing 2,000 of them)."""
    m, big_n = int(max_frames), int(n_frames)
    return f"gt(floor(n*{m}/{big_n}),floor((n-1)*{m}/{big_n}))"


def frame_plan(n_frames: int, max_frames: int, max_crops: int) -> tuple[np.ndarray | None, int]:
    """(indices to decode or None for all, the count cap). `max_frames` is the user's sampling
    (0: every frame); `max_crops` bounds memory: a clip with more frames than that is sampled
    uniformly down to it. With an unknown frame count (0) decoding stops at the cap."""
    limit = min(max_frames, max_crops) if max_frames > 0 else max_crops
    return sample_indices(n_frames, limit), limit


def iter_frames(
    path: str | Path, max_frames: int = 0, max_side: int = 0, timeout: float = 600,
    max_crops: int = 0, info: ProbeInfo | None = None,
) -> Iterator[tuple[np.ndarray, int]]:  # fmt: skip
    """Yield (frame uint8 H×W×3 RGB, source frame index), one frame in memory at a time.

    Only the first video stream is decoded (`0:v:0`; a file with several video streams would
    otherwise mix them in one pipe). max_frames > 0 keeps at most that many frames, uniformly
    spread; max_crops > 0 caps the count the same way (memory bound per clip); max_side > 0
    downscales so the longer side is at most max_side (never upscales). Raises ClipFailure for
    files without video ('no_video') or that decode to nothing ('decode_error').
    """
    info = info or probe(path, timeout)
    if not info.has_video:
        raise ClipFailure("no_video", "no video stream")
    idx, limit = (
        frame_plan(info.n_frames, max_frames, max_crops)
        if max_crops > 0
        else (sample_indices(info.n_frames, max_frames), 0)
    )
    stream = ffmpeg.input(str(path))["v:0"]
    if idx is not None:
        stream = stream.filter("select", select_expr(info.n_frames, len(idx)))
    if max_side > 0:
        m = int(max_side)
        stream = stream.filter(
            "scale",
            w=f"if(gte(iw,ih),min(iw,{m}),-2)",
            h=f"if(gte(iw,ih),-2,min(ih,{m}))",
        )
    out_kw = {"format": "rawvideo", "pix_fmt": "rgb24", "fps_mode": "passthrough"}
    args = stream.output("pipe:", **out_kw).global_args("-hide_banner", "-nostdin")
    proc = subprocess.Popen(
        args.compile(cmd=ffmpeg_exe()), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # ffmpeg prints the output size on stderr before its first frame; a reader thread collects
    # stderr so neither pipe can fill up and stall the other.
    err_lines: list[str] = []
    size_seen = threading.Event()

    def read_stderr():
        for raw in proc.stderr:
            err_lines.append(raw.decode("utf-8", "replace"))
            if "Output #0" in "".join(err_lines[-8:]) and _OUT_SIZE_RE.search(err_lines[-1]):
                size_seen.set()
        size_seen.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    # `timeout` bounds a stall (no frame for that long), not the clip: a long clip is read as
    # slowly as its frames are cropped.
    watchdog = _Watchdog(proc, timeout)
    n = 0
    try:
        size_seen.wait()
        out = "".join(err_lines).split("Output #0", 1)
        size = _OUT_SIZE_RE.search(out[-1]) if len(out) == 2 else None
        if size is None:
            proc.wait()
            reader.join()
            watchdog.check()
            raise ClipFailure("decode_error", last_line("".join(err_lines)))
        w, h = int(size[1]), int(size[2])
        while not limit or n < limit:
            buf = proc.stdout.read(w * h * 3)
            watchdog.check()
            if len(buf) < w * h * 3:
                break
            watchdog.feed()
            frame = np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
            yield frame, int(idx[n]) if idx is not None and n < len(idx) else n
            n += 1
        if n == 0:
            proc.wait()
            reader.join()
            raise ClipFailure("decode_error", f"no frame decoded: {last_line(''.join(err_lines))}")
    finally:
        watchdog.stop()
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()
        reader.join()


class _Watchdog:
    """Kills `proc` when `feed` has not been called for `timeout` seconds."""

    def __init__(self, proc: subprocess.Popen, timeout: float):
        self.proc, self.timeout = proc, timeout
        self.last = time.monotonic()
        self.fired = False
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.done.wait(min(1.0, self.timeout)):
            if time.monotonic() - self.last > self.timeout:
                self.fired = True
                self.proc.kill()
                return

    def feed(self) -> None:
        self.last = time.monotonic()

    def check(self) -> None:
        if self.fired:
            raise ClipFailure("decode_error", f"ffmpeg gave no frame for {self.timeout:.0f} s")

    def stop(self) -> None:
        self.done.set()


def decode_frames(
    path: str | Path, max_frames: int = 0, max_side: int = 0, timeout: float = 600
) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 F×H×W×3 RGB, source frame indices F): `iter_frames` collected (tests,
    short clips; the faces stage streams)."""
    pairs = list(iter_frames(path, max_frames, max_side, timeout))
    return np.stack([f for f, _ in pairs]), np.asarray([i for _, i in pairs], dtype=np.int64)
