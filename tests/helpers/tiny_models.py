"""Tiny models and small audio inputs for the acoustic/ASR/text tests (written once per run)."""

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

SR = 16000
_ROOT: Path | None = None
_MADE: dict[str, Path] = {}


def _root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="mersemi-tiny-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def tiny_model(kind: str) -> Path:
    """Directory of the tiny `hubert`, `wenet` or `llm` model (seed 0), shared by all tests."""
    if kind not in _MADE:
        if kind == "hubert":
            from mersemi.demo.tiny.hubert import write_tiny_hubert as write
        elif kind == "wenet":
            from mersemi.demo.tiny.wenet import write_tiny_wenet as write
        else:
            from mersemi.demo.tiny.llm import write_tiny_llm as write
        _MADE[kind] = write(_root() / kind, seed=0)
    return _MADE[kind]


def tone(freq: float, seconds: float, am: float = 3.0, seed: int = 0) -> np.ndarray:
    """An amplitude-modulated sine with a little noise, float32 in [-1, 1]."""
    t = np.arange(int(round(seconds * SR))) / SR
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * am * t))
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_shard(path: Path, names: list[str]) -> Path:
    pd.DataFrame(
        {
            "name": names,
            "path": [f"/videos/{n}.mp4" for n in names],
            "split": "unlabeled",
            "label": "",
            "shard": 0,
        }
    ).to_csv(path, index=False)
    return path


def write_audio_index(folder: Path, clips: dict[str, np.ndarray | str | None]) -> Path:
    """Wavs + an index CSV in the audio stage's format.

    A value is a waveform (written as 16-bit wav), a reason string (clip invalid in the index,
    no wav) or b"..." bytes (written verbatim as a corrupt wav that the index calls valid)."""
    from mersemi.extract.wav import INDEX_COLUMNS, write_wav

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, value in clips.items():
        wav = folder / f"{name}.wav"
        if isinstance(value, str):
            rows.append({"name": name, "wav": "", "valid": False, "reason": value})
            continue
        if isinstance(value, bytes):
            wav.write_bytes(value)
            dur = 0.0
        else:
            write_wav(wav, value, SR)
            dur = len(value) / SR
        rows.append({"name": name, "wav": str(wav), "valid": True, "reason": "", "duration": dur})
    df = pd.DataFrame(rows)
    for c in INDEX_COLUMNS:
        if c not in df.columns:
            df[c] = ""
    df["duration"] = df["duration"].replace("", 0.0).fillna(0.0)
    df["detail"] = df["detail"].fillna("")
    index = folder.with_suffix(".csv")
    df[list(INDEX_COLUMNS)].to_csv(index, index=False)
    return index
