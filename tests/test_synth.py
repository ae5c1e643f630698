import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import f1_score

from mersemi.classes import CLASSES, MER2024_TRAIN_COUNTS
from mersemi.cli import main
from mersemi.manifest import read_manifest
from mersemi.store import load_aligned
from mersemi.synth import DIMS


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    assert main(["synth", "--out", str(out), "--n-unlabeled", "600", "--seed", "3"]) == 0
    return out


def test_files_counts_and_dims(synth):
    al = load_aligned({m: synth / f"{m}.h5" for m in DIMS}, dims=DIMS)
    man = read_manifest(synth / "manifest.csv").set_index("name").loc[al.names]
    assert len(al) == 5030 + 600 + 1169
    train = man[man.split == "train"]
    assert train["label"].value_counts().to_dict() == MER2024_TRAIN_COUNTS
    test_mix = man[man.split == "test"]["label"].value_counts(normalize=True)
    assert abs(test_mix["surprise"] - 190 / 5030) > 0.03  # a shifted class mix
    assert (man[man.split == "unlabeled"]["label"] == "").all()
    truth = pd.read_csv(synth / "unlabeled_truth.csv")
    assert set(truth["discrete"]) == set(CLASSES) and len(truth) == 600


def test_same_seed_same_features(synth, tmp_path):
    main(["synth", "--out", str(tmp_path), "--n-unlabeled", "600", "--seed", "3"])
    a = load_aligned({"visual": synth / "visual.h5"})
    b = load_aligned({"visual": tmp_path / "visual.h5"})
    np.testing.assert_array_equal(a.features["visual"], b.features["visual"])


def test_semi_supervised_structure(synth):
    """Each modality informative at its own level (audio strongest), fusion beats them all."""
    al = load_aligned({m: synth / f"{m}.h5" for m in DIMS})
    man = read_manifest(synth / "manifest.csv").set_index("name").loc[al.names]
    tr, te = (man.split == "train").values, (man.split == "test").values
    y = man["label"].values

    def waf(x):
        clf = RidgeClassifier(alpha=3000.0).fit(x[tr], y[tr])
        return f1_score(y[te], clf.predict(x[te]), average="weighted")

    single = {m: waf(al.features[m]) for m in DIMS}
    fused = waf(np.hstack([al.features[m] for m in DIMS]))
    assert single["acoustic"] > single["visual"] > single["text"] > 1 / 6 + 0.15
    assert fused > single["acoustic"] + 0.03
    assert single["acoustic"] < 0.85  # not trivially separable: room for the method
