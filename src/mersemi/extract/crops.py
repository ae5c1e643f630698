"""The crops file: what the faces stage writes and the visual stage reads (neither imports the
other).

A crops file (e.g. faces/shard-0003.h5), written atomically by `CropWriter`:
  names     utf-8, N clips in shard order
  valid     bool, N (False: no face in any frame, or the video could not be decoded)
  reason    utf-8, N ('' when valid)
  offsets   int64, N+1: the crops of clip i are crops[offsets[i]:offsets[i+1]]
  crops     uint8, T×S×S×3 RGB (T = all kept frames of the shard)
  frame     int64, T: source frame index of each crop
  attrs     backend, size, params (JSON), n_clips, n_crops
"""

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..atomic import atomic_path
from ..errors import InputError


class CropWriter:
    """Writes a crops file: `add(i, crops, frames)` per clip in any order of completion (clip i's
    crops are appended, offsets kept), then `close(outcome, attrs)`; atomic (a temp file until
    the `with` block ends without error)."""

    def __init__(self, out, size: int, n_clips: int):
        self._atomic = atomic_path(Path(out))
        self._tmp = self._atomic.__enter__()
        self.h5 = h5py.File(self._tmp, "w")
        s = size
        self.crops = self.h5.create_dataset(
            "crops", shape=(0, s, s, 3), maxshape=(None, s, s, 3), dtype=np.uint8,
            chunks=(1, s, s, 3),
        )  # fmt: skip
        self.frame = self.h5.create_dataset("frame", shape=(0,), maxshape=(None,), dtype=np.int64)
        self.offsets = np.zeros(n_clips + 1, dtype=np.int64)
        self.total = 0

    def __enter__(self):
        return self

    def add(self, i: int, crops: np.ndarray | None = None, frames: np.ndarray | None = None):
        """Clip i's crops (None: it has none); call for every clip in shard order."""
        if crops is not None:
            n = len(crops)
            self.crops.resize(self.total + n, axis=0)
            self.crops[self.total : self.total + n] = crops
            self.frame.resize(self.total + n, axis=0)
            self.frame[self.total : self.total + n] = frames
            self.total += n
        self.offsets[i + 1] = self.total

    def close(self, outcome, attrs: dict) -> None:
        str_t = h5py.string_dtype("utf-8")
        h5 = self.h5
        h5.create_dataset("offsets", data=self.offsets)
        h5.create_dataset("names", data=outcome.names, dtype=str_t)
        h5.create_dataset("valid", data=outcome.valid)
        h5.create_dataset("reason", data=outcome.reasons, dtype=str_t)
        for k, v in attrs.items():
            h5.attrs[k] = v
        h5.attrs["n_clips"] = len(outcome.names)
        h5.attrs["n_crops"] = self.total

    def __exit__(self, *exc):
        self.h5.close()
        return self._atomic.__exit__(*exc)


@dataclass(frozen=True)
class CropFile:
    names: list[str]
    valid: np.ndarray
    reasons: list[str]
    offsets: np.ndarray
    size: int
    params: dict
    path: Path


def open_crops(path) -> CropFile:
    """Read the index of a crops file (not the crops); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"crops file {path}: not found (run `mersemi extract faces` first)")
    try:
        with h5py.File(path, "r") as h5:
            for k in ("names", "valid", "reason", "offsets", "crops"):
                if k not in h5:
                    raise InputError(f"crops file {path}: missing dataset {k!r}")
            return CropFile(
                names=list(h5["names"].asstr()[:]),
                valid=h5["valid"][:].astype(bool),
                reasons=list(h5["reason"].asstr()[:]),
                offsets=h5["offsets"][:],
                size=int(h5.attrs["size"]),
                params=json.loads(h5.attrs["params"]),
                path=path,
            )
    except OSError as e:
        raise InputError(f"crops file {path}: not a readable HDF5 file ({e})") from None
