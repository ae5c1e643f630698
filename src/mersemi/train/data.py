"""The training dataset: aligned features, manifest splits and labels, in memory.

Missing or invalid modality features (valid=False) are zero vectors, as in MER2024 (the store
already writes zeros there; they are zeroed again here in case a writer did not).
"""

import logging
import os
from dataclasses import dataclass

import numpy as np

from ..classes import CLASS_INDEX
from ..errors import InputError
from ..manifest import read_manifest
from ..store import MODALITIES, load_aligned

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    names: np.ndarray  # object, N
    features: dict[str, np.ndarray]  # modality -> float32 N x D
    valid: dict[str, np.ndarray]  # modality -> bool N
    split: np.ndarray  # object, N: train | unlabeled | test
    labels: np.ndarray  # int64, N: class index, -1 when unknown

    def __len__(self) -> int:
        return len(self.names)

    @property
    def dims(self) -> dict[str, int]:
        return {m: int(x.shape[1]) for m, x in self.features.items()}

    def labeled(self) -> np.ndarray:
        return np.flatnonzero((self.split == "train") & (self.labels >= 0))

    def pool(self, include_test: bool = True) -> np.ndarray:
        """Rows without a training label: the unlabeled split (and the test split)."""
        splits = ("unlabeled", "test") if include_test else ("unlabeled",)
        return np.flatnonzero(np.isin(self.split, splits))

    def test_labeled(self) -> np.ndarray:
        return np.flatnonzero((self.split == "test") & (self.labels >= 0))

    def rows(self, names) -> np.ndarray:
        index = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise InputError(f"{len(missing)} clip(s) not in the feature store, e.g. {missing[:5]}")
        return np.fromiter((index[n] for n in names), dtype=np.int64, count=len(names))


def build_dataset(
    names, features: dict, valid: dict, split, labels: list[str] | np.ndarray
) -> Dataset:
    feats = {}
    for m in features:
        x = np.ascontiguousarray(features[m], dtype=np.float32)
        bad = ~np.asarray(valid[m], bool)
        if bad.any():
            x = x.copy()
            x[bad] = 0.0
        feats[m] = x
    y = np.array([CLASS_INDEX.get(str(lbl), -1) for lbl in labels], dtype=np.int64)
    return Dataset(
        np.asarray(names, dtype=object),
        feats,
        {m: np.asarray(v, bool) for m, v in valid.items()},
        np.asarray(split, dtype=object),
        y,
    )


def load_dataset(
    acoustic: str | os.PathLike,
    visual: str | os.PathLike,
    text: str | os.PathLike,
    manifest: str | os.PathLike,
) -> Dataset:
    """Read the three merged feature files and the manifest; they must hold the same clips."""
    paths = {"acoustic": acoustic, "visual": visual, "text": text}
    al = load_aligned({m: paths[m] for m in MODALITIES}, how="exact")
    man = read_manifest(manifest)
    by_name = man.set_index("name")
    in_store = set(al.names)
    missing = sorted(set(by_name.index) - in_store)
    extra = sorted(in_store - set(by_name.index))
    if missing or extra:
        raise InputError(
            f"manifest {manifest} and feature store disagree: {len(missing)} manifest clip(s) "
            f"without features {missing[:5]}, {len(extra)} feature row(s) not in the manifest "
            f"{extra[:5]}"
        )
    rows = by_name.loc[list(al.names)]
    for m in MODALITIES:
        n_bad = int((~al.valid[m]).sum())
        if n_bad:
            log.warning("%s: %d clip(s) without valid features; using zero vectors", m, n_bad)
    ds = build_dataset(
        al.names, al.features, al.valid, rows["split"].to_numpy(), rows["label"].to_numpy()
    )
    log.info(
        "dataset: %d clips (%d labeled train, %d pool, %d labeled test), dims %s",
        len(ds),
        len(ds.labeled()),
        len(ds.pool()),
        len(ds.test_labeled()),
        ds.dims,
    )
    return ds
