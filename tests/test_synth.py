import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import f1_score

from mersemi.classes import CLASSES, MER2024_TRAIN_COUNTS
from mersemi.cli import main
from mersemi.demo.synth import DIMS, TEST_MIX, tv_distance
from mersemi.demo.synth_speakers import SpeakerSynthConfig, make_speaker_synth
from mersemi.manifest import read_manifest
from mersemi.store import load_aligned, read_features


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


def _valid_and_man(out):
    al = load_aligned({m: out / f"{m}.h5" for m in DIMS}, dims=DIMS)
    man = read_manifest(out / "manifest.csv").set_index("name").loc[al.names]
    return al, man


@pytest.mark.parametrize("profile", ["synth", "speakers"])
def test_missing_modalities(profile, request):
    """About 10 % of the clips miss each modality, independently; such a row is zeros with
    valid False (the store's unprocessed-clip convention); no clip misses all three; the
    shares written to the params are the ones in the files."""
    out = request.getfixturevalue(profile)
    al, _ = _valid_and_man(out)
    miss = np.stack([~al.valid[m] for m in DIMS], 1)
    n = len(miss)
    for j, m in enumerate(DIMS):
        assert abs(miss[:, j].mean() - 0.1) < 4 * np.sqrt(0.09 / n)
        assert not al.features[m][miss[:, j]].any()
        assert (np.abs(al.features[m][~miss[:, j]]).sum(1) > 0).all()
    both = (miss[:, 0] & miss[:, 1]).mean()  # independent: P(both) = 0.01
    assert abs(both - 0.01) < 4 * np.sqrt(0.01 / n)
    assert not miss.all(1).any()
    params = read_features(out / "text.h5").meta.params["synth"]["achieved"]
    assert params["missing_share"] == {
        m: round(float(miss[:, j].mean()), 6) for j, m in enumerate(DIMS)
    }


def _tv(man) -> float:
    a = man[man.split == "train"]["label"].value_counts(normalize=True)
    b = man[man.split == "test"]["label"].value_counts(normalize=True)
    return 0.5 * sum(abs(a.get(c, 0) - b.get(c, 0)) for c in CLASSES)


def test_speakers_test_shift_is_stated(speakers, tmp_path):
    """The test mix lies at the stated TV distance from the labeled mix (0.25 by default,
    up to the rounding of 1,169 counts), as written in the params; another --test-shift
    gives another distance; an impossible one is one error line."""
    _, man = _valid_and_man(speakers)
    assert abs(_tv(man) - 0.25) < 6 / 1169
    assert read_features(speakers / "text.h5").meta.params["synth"]["achieved"][
        "test_tv"
    ] == pytest.approx(_tv(man), abs=1e-6)
    args = ["synth", "--profile", "speakers", "--out", str(tmp_path), "--n-unlabeled", "0"]
    assert main([*args, "--test-shift", "0.05", "--missing", "0"]) == 0
    al, man = _valid_and_man(tmp_path)
    assert abs(_tv(man) - 0.05) < 6 / 1169 and all(v.all() for v in al.valid.values())
    assert main([*args, "--test-shift", "0.4"]) == 2


def test_no_missing_and_old_shift_keep_the_former_test_mix(tmp_path):
    """missing=0 and test_shift = TV(labeled mix, TEST_MIX) give TEST_MIX's counts, by hand."""
    n = sum(MER2024_TRAIN_COUNTS.values())
    tv0 = tv_distance({c: MER2024_TRAIN_COUNTS[c] / n for c in CLASSES}, TEST_MIX)
    make_speaker_synth(tmp_path, SpeakerSynthConfig(n_unlabeled=0, missing=0, test_shift=tv0))
    _, man = _valid_and_man(tmp_path)
    counts = man[man.split == "test"]["label"].value_counts().to_dict()
    assert counts == {
        "neutral": 257,
        "angry": 164,
        "happy": 304,
        "sad": 210,
        "worried": 140,
        "surprise": 94,
    }
