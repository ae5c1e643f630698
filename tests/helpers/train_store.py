"""A tiny feature store for `mersemi train ...` (90 labeled, 40 unlabeled, 20 test clips of
three modalities, one clip without any valid modality) and the flags that point at it."""

import numpy as np
import pandas as pd
import pytest

from mersemi.classes import CLASSES
from mersemi.store import FeatureMeta, write_features

DIMS = {"acoustic": 12, "visual": 8, "text": 16}
BLIND = 97
SMALL = {"hidden": 8, "d_model": 8, "heads": 2, "batch_size": 32, "progress": False}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    n_train, n_unl, n_test = 90, 40, 20
    n = n_train + n_unl + n_test
    y = np.concatenate([np.arange(n_train) % 6, rng.integers(0, 6, n_unl + n_test)])
    split = ["train"] * n_train + ["unlabeled"] * n_unl + ["test"] * n_test
    names = [f"c{i:03d}" for i in range(n)]
    means = rng.standard_normal((6, 4)) * 2
    for m, dim in DIMS.items():
        a = rng.standard_normal((4, dim))
        x = (means[y] + rng.standard_normal((n, 4))) @ a
        valid = np.ones(n, bool)
        if m == "visual":
            valid[[0, 95]] = False  # one labeled, one unlabeled clip without a face
        valid[BLIND] = False  # an unlabeled clip without any valid modality
        x[~valid] = 0
        write_features(d / f"{m}.h5", FeatureMeta(m, "toy", "-", "-", dim), names, x, valid)
    labels = [CLASSES[c] if s != "unlabeled" else "" for c, s in zip(y, split, strict=True)]
    pd.DataFrame({"name": names, "path": "", "split": split, "label": labels, "shard": 0}).to_csv(
        d / "manifest.csv", index=False
    )
    return d


def feature_args(d):
    return [
        "--acoustic",
        str(d / "acoustic.h5"),
        "--visual",
        str(d / "visual.h5"),
        "--text",
        str(d / "text.h5"),
        "--manifest",
        str(d / "manifest.csv"),
    ]
