"""The audio stage's work: one ffmpeg call per clip, the wavs, the index CSV (written last)."""

import logging
import os
import subprocess
import wave
from pathlib import Path

import numpy as np
import pandas as pd

from ...atomic import atomic_path, fit_name, write_csv_atomic
from ...errors import InputError
from ...ffmpeg_bin import ffmpeg_exe
from ..common import ClipFailure, Outcome, prefetch, progress, read_shard
from ..ffmpeg import last_line
from ..wav import INDEX_COLUMNS
from . import STAGE, Params

log = logging.getLogger(__name__)


def wav_dir(index_csv: str | os.PathLike) -> Path:
    """Folder of a shard's wavs: `audio/shard-0003.csv` → `audio/shard-0003/`."""
    index_csv = Path(index_csv)
    return index_csv.with_name(index_csv.stem)


def decode_audio(path: Path, p: Params) -> np.ndarray:
    """int16 mono samples at p.sample_rate, at most max_seconds + 1 s of them.

    One ffmpeg call that reads the first audio stream only: the verdict (no_audio,
    decode_error) comes from ffmpeg's view of the audio, never from the video stream's health.
    """
    if not path.is_file():
        raise ClipFailure("missing_file", str(path))
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0", "-vn"]
    cmd += ["-ac", "1", "-ar", str(p.sample_rate), "-t", f"{p.max_seconds + 1.0:.3f}"]
    cmd += ["-f", "s16le", "-acodec", "pcm_s16le", "pipe:"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=p.timeout)
    except subprocess.TimeoutExpired:
        raise ClipFailure("decode_error", f"ffmpeg timed out after {p.timeout:.0f} s") from None
    samples = np.frombuffer(proc.stdout[: len(proc.stdout) // 2 * 2], dtype="<i2")
    if proc.returncode != 0 and samples.size == 0:
        err = proc.stderr.decode("utf-8", "replace")
        listed = [ln for ln in err.splitlines() if ln.strip().startswith("Stream #")]
        if listed and "matches no streams" in err and not any(": Audio:" in x for x in listed):
            raise ClipFailure("no_audio", "no audio stream")
        raise ClipFailure("decode_error", last_line(err))
    return samples


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """float32 samples in [-1, 1) and the sample rate of a 16-bit mono wav written here."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise InputError(f"wav {path}: expected 16-bit mono")
        sr = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data.astype(np.float32) / 32768.0, sr


def run(args, p: Params) -> pd.DataFrame:
    """The shard's wavs and its index (`args.shard` -> `args.out`); returns the index."""
    clips = read_shard(args.shard)
    out = Path(args.out)
    folder = wav_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    outcome = Outcome([c.name for c in clips])
    wavs = [""] * len(clips)
    durations = np.zeros(len(clips))
    max_n = int(round(p.max_seconds * p.sample_rate))

    def work(item):
        i, clip = item
        return decode_audio(clip.path, p)

    items = list(enumerate(clips))
    for (i, clip), samples, err in progress(
        prefetch(work, items, p.workers, p.prefetch), total=len(clips), desc="audio"
    ):
        target = folder / fit_name(clip.name, ".wav")  # the index keeps the path
        if err is not None:
            outcome.fail_with(i, err)
            target.unlink(missing_ok=True)
            continue
        if samples.size == 0:
            outcome.fail(i, "empty_audio", "the audio stream has no samples")
            target.unlink(missing_ok=True)
            continue
        if samples.size > max_n:
            outcome.fail(i, "too_long", f"longer than max_seconds={p.max_seconds:g}; cut there")
            samples = samples[:max_n]
        write_wav(target, samples, p.sample_rate)
        wavs[i] = str(target)
        durations[i] = samples.size / p.sample_rate
    index = pd.DataFrame(
        {
            "name": outcome.names,
            "wav": wavs,
            "valid": outcome.valid,
            "reason": outcome.reasons,
            "duration": np.round(durations, 4),
            "detail": outcome.details,
        },
        columns=INDEX_COLUMNS,
    )
    write_csv_atomic(index, out)
    outcome.log_summary(STAGE, out)
    return index
