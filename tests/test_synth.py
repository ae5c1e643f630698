import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import f1_score

from mersemi.classes import CLASSES, MER2024_TRAIN_COUNTS
from mersemi.cli import main
from mersemi.demo.synth import DIMS
from mersemi.manifest import read_manifest
from mersemi.store import load_aligned


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


def ridge_wafs(al, man) -> tuple[dict[str, float], float]:
    """Test WAF of a ridge classifier fit on the train split: per modality, and fused."""
    tr, te = (man.split == "train").values, (man.split == "test").values
    y = man["label"].values

    def waf(x):
        clf = RidgeClassifier(alpha=3000.0).fit(x[tr], y[tr])
        return f1_score(y[te], clf.predict(x[te]), average="weighted")

    return {m: waf(al.features[m]) for m in DIMS}, waf(np.hstack([al.features[m] for m in DIMS]))


def test_semi_supervised_structure(synth):
    """Each modality informative at its own level (audio strongest), fusion beats them all."""
    al = load_aligned({m: synth / f"{m}.h5" for m in DIMS})
    man = read_manifest(synth / "manifest.csv").set_index("name").loc[al.names]
    single, fused = ridge_wafs(al, man)
    assert single["acoustic"] > single["visual"] > single["text"] > 1 / 6 + 0.15
    assert fused > single["acoustic"] + 0.03
    assert single["acoustic"] < 0.85  # not trivially separable: room for the method


@pytest.fixture(scope="module")
def speakers(tmp_path_factory):
    out = tmp_path_factory.mktemp("speakers")
    args = ["synth", "--profile", "speakers", "--out", str(out), "--n-unlabeled", "600"]
    assert main([*args, "--seed", "3", "--order", "visual,text,acoustic"]) == 0
    return out


def test_speakers_profile_structure(speakers):
    """Unseen test speakers, a shifted test mix, ~30 % ambiguous pool clips, hidden labels,
    and the configured order of modality strength (visual > text > acoustic here)."""
    al = load_aligned({m: speakers / f"{m}.h5" for m in DIMS}, dims=DIMS)
    man = read_manifest(speakers / "manifest.csv").set_index("name").loc[al.names]
    aud = pd.read_csv(speakers / "pool_audit.csv", keep_default_na=False).set_index("name")
    aud = aud.loc[al.names]
    assert man[man.split == "train"]["label"].value_counts().to_dict() == MER2024_TRAIN_COUNTS
    seen = set(aud.speaker[aud.split != "test"])
    assert not seen & set(aud.speaker[aud.split == "test"])
    assert len(seen) > 100
    un = aud[aud.split == "unlabeled"]
    assert (
        abs(un.ambiguous.mean() - 0.3) < 0.01 and not aud.ambiguous[aud.split != "unlabeled"].any()
    )
    assert (un.second[un.ambiguous] != un.discrete[un.ambiguous]).all()
    truth = pd.read_csv(speakers / "unlabeled_truth.csv").set_index("name")
    assert (truth.loc[un.index, "discrete"] == un.discrete).all()
    test_mix = man[man.split == "test"]["label"].value_counts(normalize=True)
    assert abs(test_mix["surprise"] - 190 / 5030) > 0.03

    single, fused = ridge_wafs(al, man)
    assert single["visual"] > single["text"] > single["acoustic"] > 1 / 6 + 0.15
    assert fused > single["visual"]


def test_speakers_profile_rejects_bad_order(tmp_path):
    args = ["synth", "--profile", "speakers", "--out", str(tmp_path), "--order", "text,text,visual"]
    assert main(args) != 0
    assert main(["synth", "--out", str(tmp_path), "--order", "text,visual,acoustic"]) != 0
