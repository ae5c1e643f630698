"""HDF5 feature store: one file per (modality, shard), merged into one file per modality.

Layout of every file:
  names     utf-8 strings, N (unique)
  features  float32, N x D
  valid     bool, N (False: the clip could not be processed; its feature row is zeros)
  layers    float32, N x L x D, only with `layers: all`: hidden state k's pooled vector at
            [:, k] (the layer probe's input); `features` keeps the family's default choice
  attrs     modality, model, model_revision, layers, pooling, dim, params (JSON), digest

Files are written under a temp name and renamed when complete (see `atomic`).
"""

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import h5py
import numpy as np

from . import __version__
from .atomic import temp_path
from .errors import InputError
from .provenance import model_revision, provenance

log = logging.getLogger(__name__)

MODALITIES: tuple[str, ...] = ("acoustic", "visual", "text")
_STR = h5py.string_dtype("utf-8")


def params_digest(params: Mapping) -> str:
    """Digest of the parameters that made a feature file (canonical JSON, sha256, 16 hex)."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class FeatureMeta:
    """What made a feature file. `params` holds everything else that affects the numbers."""

    modality: str
    model: str
    layers: str
    pooling: str
    dim: int
    params: Mapping = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return params_digest(
            {
                "modality": self.modality,
                "model": self.model,
                "layers": self.layers,
                "pooling": self.pooling,
                "dim": self.dim,
                "params": dict(self.params),
            }
        )

    def to_attrs(self) -> dict:
        return {
            "modality": self.modality,
            "model": self.model,
            # which weights: the path alone (in the digest) cannot tell a folder whose
            # weights were replaced in place; provenance.model_revision says how it is made
            "model_revision": model_revision(self.model),
            "layers": self.layers,
            "pooling": self.pooling,
            "dim": self.dim,
            "params": json.dumps(dict(self.params), sort_keys=True, default=str),
            "digest": self.digest,
            "mersemi_version": __version__,
            "provenance": json.dumps(provenance(self.params), sort_keys=True),
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping, path: Path) -> "FeatureMeta":
        try:
            return cls(
                modality=str(attrs["modality"]),
                model=str(attrs["model"]),
                layers=str(attrs["layers"]),
                pooling=str(attrs["pooling"]),
                dim=int(attrs["dim"]),
                params=json.loads(attrs["params"]),
            )
        except KeyError as e:
            raise InputError(f"feature file {path}: missing attribute {e.args[0]!r}") from None


@dataclass(frozen=True)
class FeatureSet:
    meta: FeatureMeta
    names: np.ndarray  # object array of str
    features: np.ndarray  # float32 N x D
    valid: np.ndarray  # bool N

    def __len__(self) -> int:
        return len(self.names)


class FeatureWriter:
    """Write a feature file of known size in slices; it appears at `path` only on success.

    with FeatureWriter(path, meta, n) as w:
        w.write(0, names[:k], feats[:k], valid[:k]) ...
    """

    def __init__(self, path: str | os.PathLike, meta: FeatureMeta, n: int, n_layers: int = 0):
        self.path, self.meta, self.n, self.n_layers = Path(path), meta, n, n_layers
        self._filled = np.zeros(n, dtype=bool)

    def __enter__(self) -> "FeatureWriter":
        self._tmp = temp_path(self.path)
        self._h5 = h5py.File(self._tmp, "w")
        self._h5.create_dataset("names", shape=(self.n,), dtype=_STR)
        self._h5.create_dataset("features", shape=(self.n, self.meta.dim), dtype=np.float32)
        self._h5.create_dataset("valid", shape=(self.n,), dtype=bool)
        if self.n_layers:  # chunked by layer: the probe reads one layer of every row
            shape, chunks = (
                (self.n, self.n_layers, self.meta.dim),
                (max(min(self.n, 256), 1), 1, self.meta.dim),
            )
            self._h5.create_dataset("layers", shape=shape, dtype=np.float32, chunks=chunks)
        self._h5.attrs.update(self.meta.to_attrs())
        return self

    def write(self, start: int, names: Sequence[str], features: np.ndarray, valid, layers=None):
        features = np.asarray(features, dtype=np.float32)
        stop = start + len(names)
        if self.n_layers:
            layers = np.asarray(layers, dtype=np.float32)
            if (
                layers.shape != (len(names), self.n_layers, self.meta.dim)
                or not np.isfinite(layers).all()
            ):
                raise ValueError(f"{self.path}: rows {start}:{stop}: layers of shape "
                                 f"{layers.shape} (or not finite), expected ({len(names)}, "
                                 f"{self.n_layers}, {self.meta.dim})")  # fmt: skip
            self._h5["layers"][start:stop] = layers
        if features.shape != (len(names), self.meta.dim):
            raise ValueError(
                f"{self.path}: features of shape {features.shape} for {len(names)} names, "
                f"expected dim {self.meta.dim}"
            )
        if not np.isfinite(features).all():
            raise ValueError(f"{self.path}: non-finite feature values in rows {start}:{stop}")
        self._h5["names"][start:stop] = list(names)
        self._h5["features"][start:stop] = features
        self._h5["valid"][start:stop] = np.asarray(valid, dtype=bool)
        self._filled[start:stop] = True

    def __exit__(self, exc_type, exc, tb):
        try:
            self._h5.close()
            if exc_type is None:
                if not self._filled.all():
                    missing = int((~self._filled).sum())
                    raise ValueError(f"{self.path}: {missing} of {self.n} rows never written")
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)


def write_features(
    path: str | os.PathLike,
    meta: FeatureMeta,
    names: Sequence[str],
    features: np.ndarray,
    valid: Iterable[bool],
    layers: np.ndarray | None = None,
) -> None:
    """Write a whole feature file atomically. Names must be unique; `layers` (N x L x D):
    every hidden state's pooled vector."""
    names = list(names)
    _check_unique(names, Path(path))
    n_layers = 0 if layers is None else np.shape(layers)[1]
    with FeatureWriter(path, meta, len(names), n_layers) as w:
        w.write(0, names, features, list(valid), layers)


def read_layers(path: str | os.PathLike, layer: int | None = None) -> np.ndarray | None:
    """The file's `layers` dataset (N x L x D; one layer: N x D), None where it has none."""
    with _open(Path(path)) as f:
        if "layers" not in f:
            return None
        return f["layers"][()] if layer is None else f["layers"][:, layer, :]


def stored_layers(path: str | os.PathLike) -> int:
    """How many layers the file stores (0: only `features`)."""
    with _open(Path(path)) as f:
        return int(f["layers"].shape[1]) if "layers" in f else 0


def _check_unique(names: Sequence[str], path: Path) -> None:
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dup = next(n for n in names if n in seen or seen.add(n))
        raise InputError(f"feature file {path}: duplicate name {dup!r}")


def read_meta(path: str | os.PathLike) -> FeatureMeta:
    path = Path(path)
    with _open(path) as f:
        return FeatureMeta.from_attrs(f.attrs, path)


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise InputError(f"feature file {path}: not found")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"feature file {path}: not a readable HDF5 file ({e})") from None


def read_features(path: str | os.PathLike, modality: str | None = None) -> FeatureSet:
    """Read and check one feature file (shape, dim attr, unique names, expected modality)."""
    path = Path(path)
    with _open(path) as f:
        for key in ("names", "features", "valid"):
            if key not in f:
                raise InputError(f"feature file {path}: missing dataset {key!r}")
        meta = FeatureMeta.from_attrs(f.attrs, path)
        names = np.asarray(f["names"].asstr()[:], dtype=object)
        features = f["features"][:]
        valid = f["valid"][:].astype(bool)
    if modality is not None and meta.modality != modality:
        raise InputError(f"feature file {path}: holds {meta.modality!r}, expected {modality!r}")
    if features.ndim != 2 or features.shape[1] != meta.dim:
        raise InputError(
            f"feature file {path}: features have shape {features.shape} but attr dim={meta.dim}"
        )
    if not (len(names) == len(features) == len(valid)):
        raise InputError(
            f"feature file {path}: {len(names)} names, {len(features)} rows, {len(valid)} valid"
        )
    _check_unique(list(names), path)
    return FeatureSet(meta, names, features, valid)


def merge_features(
    shard_paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    owners: Mapping[str, str] | None = None,
    shard_ids: Sequence[str] | None = None,
) -> FeatureMeta:
    """Merge per-shard files of one modality into one file, checking that they belong together.

    Refuses shards made with different parameters (digest) and duplicate names across shards.
    With `owners` (clip name -> shard id, from the inventory) and `shard_ids` (the shard of
    each file, in order, as the workflow knows it), a file keeps only the rows of clips its
    shard owns (stale rows of removed clips, or of clips re-extracted in a newer shard, are
    dropped) and every owned clip must be present.
    """
    if not shard_paths:
        raise InputError(f"merge into {out}: no shard files given")
    if owners is not None:
        _check_shard_ids(shard_paths, shard_ids, out)
    metas = [read_meta(p) for p in shard_paths]
    first = metas[0]
    for p, m in zip(shard_paths, metas, strict=True):
        if m.digest != first.digest:
            raise InputError(
                f"merge into {out}: {p} was made with different parameters than "
                f"{shard_paths[0]} (modality {m.modality}/{first.modality}, model "
                f"{m.model}/{first.model}, digest {m.digest}/{first.digest})"
            )
    keep: list[np.ndarray] = []
    owner: dict[str, str] = {}
    for i, p in enumerate(shard_paths):
        with _open(Path(p)) as f:
            names = f["names"].asstr()[:]
        if owners is None:
            mask = np.ones(len(names), bool)
        else:
            shard = shard_ids[i]
            mask = np.array([owners.get(n) == shard for n in names], bool)
        for n in names[mask]:
            if n in owner:
                raise InputError(f"merge into {out}: name {n!r} in both {owner[n]} and {p}")
            owner[n] = str(p)
        keep.append(mask)
    if owners is not None:
        missing = sorted(owners.keys() - owner.keys())
        if missing:
            absent = sorted({owners[n] for n in missing} - set(shard_ids))
            raise InputError(
                f"merge into {out}: {len(missing)} clip(s) of the inventory missing from "
                f"their shard files: {missing[:5]}"
                + (f" (no file given for shard(s) {', '.join(absent[:5])})" if absent else "")
            )
    total = sum(int(m.sum()) for m in keep)
    with FeatureWriter(out, first, total, stored_layers(shard_paths[0])) as w:
        start = 0
        for p, mask in zip(shard_paths, keep, strict=True):
            fs, layers = read_features(p), read_layers(p)
            rows = None if layers is None else layers[mask]
            w.write(start, list(fs.names[mask]), fs.features[mask], fs.valid[mask], rows)
            start += int(mask.sum())
    dropped = sum(len(m) - int(m.sum()) for m in keep)
    log.info(
        "merged %d shard files into %s: %d clips (%d stale rows dropped)",
        len(shard_paths),
        out,
        total,
        dropped,
    )
    return first


def _check_shard_ids(
    shard_paths: Sequence[str | os.PathLike], shard_ids: Sequence[str] | None, out
) -> None:
    """One distinct shard id per file: which rows a file keeps depends on it."""
    if shard_ids is None:
        raise InputError(f"merge into {out}: the inventory's owners need each file's shard id")
    if len(shard_ids) != len(shard_paths):
        raise InputError(
            f"merge into {out}: {len(shard_ids)} shard id(s) for {len(shard_paths)} shard "
            f"file(s); give one id per file, in the same order"
        )
    seen: dict[str, str | os.PathLike] = {}
    for sid, p in zip(shard_ids, shard_paths, strict=True):
        if sid in seen:
            raise InputError(f"merge into {out}: shard {sid} given twice ({seen[sid]} and {p})")
        seen[sid] = p


@dataclass(frozen=True)
class AlignedFeatures:
    """Modalities aligned row by row on `names`."""

    names: np.ndarray
    features: dict[str, np.ndarray]
    valid: dict[str, np.ndarray]
    meta: dict[str, FeatureMeta]

    def __len__(self) -> int:
        return len(self.names)


def load_aligned(
    paths: Mapping[str, str | os.PathLike],
    how: Literal["inner", "exact"] = "exact",
    dims: Mapping[str, int] | None = None,
) -> AlignedFeatures:
    """Read several modalities and align them by clip name.

    how="exact": every file must hold the same set of names, else an error says what differs.
    how="inner": keep names present in every file (the drop is logged per modality).
    `dims` optionally fixes the expected feature dim per modality.
    Rows follow the order of the first modality.
    """
    if how not in ("inner", "exact"):
        raise ValueError(f"how must be 'inner' or 'exact', got {how!r}")
    sets = {m: read_features(p, modality=m) for m, p in paths.items()}
    for m, fs in sets.items():
        if dims and m in dims and fs.meta.dim != dims[m]:
            raise InputError(f"feature file {paths[m]}: dim {fs.meta.dim}, expected {dims[m]}")
    name_sets = {m: set(fs.names) for m, fs in sets.items()}
    common = set.intersection(*name_sets.values())
    for m, ns in name_sets.items():
        dropped = len(ns) - len(common)
        if dropped and how == "exact":
            example = sorted(ns - common)[:5]
            raise InputError(
                f"feature file {paths[m]}: {dropped} name(s) not in every modality, e.g. "
                f"{example}; the modalities are misaligned (use how='inner' to keep the "
                "intersection)"
            )
        if dropped:
            log.warning("%s: dropping %d clip(s) missing from another modality", m, dropped)
    first = next(iter(sets.values()))
    order = [n for n in first.names if n in common]
    out_feats, out_valid = {}, {}
    for m, fs in sets.items():
        index = {n: i for i, n in enumerate(fs.names)}
        rows = np.fromiter((index[n] for n in order), dtype=np.int64, count=len(order))
        out_feats[m] = fs.features[rows]
        out_valid[m] = fs.valid[rows]
    return AlignedFeatures(
        names=np.asarray(order, dtype=object),
        features=out_feats,
        valid=out_valid,
        meta={m: fs.meta for m, fs in sets.items()},
    )
