"""The audio stage's outputs as later stages read them: its index CSV and its 16 kHz mono wav
files (scipy, no libsndfile). Shared by the acoustic and asr stages, so neither imports the
audio stage."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import wavfile

from ..errors import InputError
from .common import ClipFailure

SAMPLE_RATE = 16000
INDEX_COLUMNS = ["name", "wav", "valid", "reason", "duration", "detail"]


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Return (float32 samples in [-1, 1], sample rate); a multi-channel file is averaged."""
    sr, data = wavfile.read(os.fspath(path))
    if data.dtype == np.int16:
        x = data.astype(np.float32) / 32768.0
    elif data.dtype == np.int32:
        x = data.astype(np.float32) / 2147483648.0
    elif data.dtype == np.uint8:
        x = (data.astype(np.float32) - 128.0) / 128.0
    else:
        x = data.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    return np.ascontiguousarray(x, dtype=np.float32), int(sr)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sr: int = 16000) -> None:
    """Write float samples in [-1, 1] as 16-bit PCM (used by tests and benchmarks)."""
    pcm = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0 - 1 / 32768) * 32768.0
    wavfile.write(os.fspath(path), sr, pcm.astype(np.int16))


def load_wave(path: str | os.PathLike) -> np.ndarray:
    """Read a clip's wav; wrong rate or empty audio is a per-clip error (ValueError)."""
    wave, sr = read_wav(path)
    if sr != SAMPLE_RATE:
        raise ValueError(f"sample rate {sr} Hz, expected {SAMPLE_RATE}")
    if len(wave) < 400:
        raise ValueError(f"audio too short ({len(wave)} samples)")
    return wave


def load_wave_for_clip(wav: str) -> np.ndarray:
    """Worker-thread decode of one clip's wav; problems are per-clip failures."""
    try:
        return load_wave(wav)
    except ValueError as e:
        reason = "empty_audio" if "too short" in str(e) else "decode_error"
        raise ClipFailure(reason, str(e)) from None
    except OSError as e:
        raise ClipFailure("decode_error", f"{wav}: {e}") from None


def read_audio_index(path: str | os.PathLike) -> pd.DataFrame:
    """Read an audio index CSV: columns INDEX_COLUMNS, `valid` bool, `wav`/`reason` str."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"audio index {path}: not found (run `mersemi extract audio`)") from None
    missing = [c for c in INDEX_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"audio index {path}: missing column(s) {missing}")
    bad = sorted(set(df["valid"]) - {"True", "False"})
    if bad:
        raise InputError(f"audio index {path}: valid must be True/False, found {bad}")
    df["valid"] = df["valid"] == "True"
    df["duration"] = df["duration"].astype(float)
    return df


def audio_rows(path: str | os.PathLike, names) -> dict:
    """The audio index rows (namedtuples) of a shard's clips, by name; every clip must be there."""
    index = read_audio_index(path)
    rows = {n: r for n, r in zip(index["name"], index.itertuples(index=False), strict=True)}
    missing = [n for n in names if n not in rows]
    if missing:
        raise InputError(
            f"audio index {path}: {len(missing)} clip(s) of the shard missing, e.g. "
            f"{missing[:3]} (was it made from the same shard?)"
        )
    return rows
