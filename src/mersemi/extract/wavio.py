"""Reading the 16 kHz mono wav files that the audio stage writes (scipy, no libsndfile)."""

import os

import numpy as np


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Return (float32 samples in [-1, 1], sample rate); a multi-channel file is averaged."""
    from scipy.io import wavfile

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
    from scipy.io import wavfile

    pcm = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0 - 1 / 32768) * 32768.0
    wavfile.write(os.fspath(path), sr, pcm.astype(np.int16))
