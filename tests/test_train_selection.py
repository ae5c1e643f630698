"""Issue 22: the linear probe, the auto vote and the pseudo-label selections (cheap, CPU)."""

import numpy as np
import pandas as pd
import pytest

from mersemi.classes import CLASSES
from mersemi.errors import InputError
from mersemi.train.data import build_dataset
from mersemi.train.params import ProbeParams, PseudoParams, parse_params
from mersemi.train.selftrain import precision_thresholds, select_balanced
from mersemi.train.vote import fit_weights, nested_auto, soft_vote


def _ds(n_lab=300, n_pool=120, seed=0):
    rng = np.random.default_rng(seed)
    n = n_lab + n_pool
    y = rng.integers(0, len(CLASSES), n)
    means = rng.standard_normal((len(CLASSES), 4)) * 2
    feats = {
        m: np.hstack([means[y] + rng.standard_normal((n, 4)), rng.standard_normal((n, d))])
        for m, d in (("acoustic", 6), ("visual", 5), ("text", 7))
    }
    split = ["train"] * n_lab + ["unlabeled"] * (n_pool // 2) + ["test"] * (n_pool - n_pool // 2)
    labels = [CLASSES[c] if s != "unlabeled" else "" for c, s in zip(y, split, strict=True)]
    valid = {m: np.ones(n, bool) for m in feats}
    return build_dataset([f"c{i}" for i in range(n)], feats, valid, split, labels)


def test_probe_same_folds_and_test_averaging():
    from mersemi.train.folds import stratified_folds
    from mersemi.train.probe import run_probe

    ds = _ds()
    df, m = run_probe(ds, parse_params(ProbeParams, {"folds": 3, "seed": 4, "C": 1.0}))
    assert m["cv"]["waf"] > 0.8 and m["test"]["waf"] > 0.8  # separable toy data
    oof = df[df.fold >= 0]
    lab = ds.labeled()
    folds = stratified_folds(ds.labels[lab], 3, 4)
    for k, val in enumerate(folds):  # the fine-tuning folds: same seed, same folds
        assert set(oof.name[oof.fold == k]) == set(ds.names[lab][val])
    assert (df.fold[df.split != "train"] == -1).all()
    probs = df[[f"prob_P_{c}" for c in CLASSES]].to_numpy()
    assert np.allclose(probs.sum(1), 1)
    _, m2 = run_probe(ds, parse_params(ProbeParams, {"folds": 3, "seed": 4, "pca": 3, "C": 1.0}))
    assert m2["cv"]["waf"] > 0.5


def test_auto_vote_is_nested_and_picks_the_better():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    good = np.full((600, 3), 0.1)
    good[np.arange(600), y] = 0.8
    noise = rng.dirichlet(np.ones(3), 600)
    fold = np.arange(600) % 3
    paper = {"A": 0.9, "F": 0.1}  # mostly the noise head: fitted weights must win
    voted, per_fold, final = nested_auto({"A": noise, "F": good}, y, fold, paper)
    assert final["use"] == "fitted" and all(v["use"] == "fitted" for v in per_fold.values())
    rest = fold != 0
    w0 = fit_weights({"A": noise[rest], "F": good[rest]}, y[rest])
    assert per_fold[0]["weights"] == w0  # chosen and fitted without fold 0's rows
    assert np.allclose(voted[fold == 0], soft_vote({"A": noise[~rest], "F": good[~rest]}, w0))
    # Good paper weights are kept (ties and wins go to the paper's).
    _, per_fold, final = nested_auto({"A": noise, "F": good}, y, fold, {"A": 0.0, "F": 1.0})
    assert final["use"] == "paper" and final["weights"] == {"A": 0.0, "F": 1.0}


def test_balanced_selection_follows_the_prior():
    rng = np.random.default_rng(1)
    n = 3000
    pm = rng.dirichlet(np.ones(3) * 0.3, n)
    pb = pm.copy()
    keep, pred = select_balanced(pm, pb, 300, np.array([0.5, 0.3, 0.2]))
    counts = np.bincount(pred[keep], minlength=3)
    assert counts.tolist() == [150, 90, 60]
    for c in range(3):  # the most confident of each class
        conf = pm.max(1)
        assert conf[keep & (pred == c)].min() >= conf[~keep & (pred == c)].max()


def test_precision_thresholds_reach_the_target_out_of_fold():
    rng = np.random.default_rng(2)
    n = 4000
    y = rng.integers(0, 2, n)
    conf = rng.uniform(0.5, 1.0, n)
    right = rng.random(n) < conf  # confidence is calibrated
    pred = np.where(right, y, 1 - y)
    p = np.zeros((n, 2))
    p[np.arange(n), pred] = conf
    p[np.arange(n), 1 - pred] = 1 - conf
    thr = precision_thresholds(p, p, y, 0.9, min_support=20)
    for c in range(2):
        sel = (pred == c) & (conf >= thr[c])
        assert (y[sel] == c).mean() >= 0.9 and sel.sum() > 200
    assert (precision_thresholds(p, p, y, 1.0, min_support=10_000) == 1.0).all()


def _frames(n_lab=400, n_pool=600, seed=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASSES), n_lab + n_pool)
    rows = []
    for _kind in ("m", "b"):
        conf = rng.uniform(0.3, 1.0, len(y))
        p = np.tile(((1 - conf) / (len(CLASSES) - 1))[:, None], (1, len(CLASSES)))
        p[np.arange(len(y)), y] = conf
        split = ["train"] * n_lab + ["unlabeled"] * n_pool
        df = pd.DataFrame(
            {
                "name": [f"c{i}" for i in range(len(y))],
                "split": split,
                "label": [
                    CLASSES[c] if s == "train" else "" for c, s in zip(y, split, strict=True)
                ],
                "fold": [i % 4 if s == "train" else -1 for i, s in enumerate(split)],
                "pred": [CLASSES[c] for c in p.argmax(1)],
            }
        )
        for clf in ("F", "vote"):
            for j, c in enumerate(CLASSES):
                df[f"prob_{clf}_{c}"] = p[:, j]
        rows.append(df)
    truth = rows[0][rows[0].split != "train"][["name"]].assign(
        discrete=[CLASSES[c] for c in y[n_lab:]]
    )
    return rows[0], rows[1], truth


@pytest.mark.parametrize("selection", ["paper", "balanced", "precision"])
def test_run_pseudo_selections(selection):
    from mersemi.train.pipeline import run_pseudo

    m, b, truth = _frames()
    p = parse_params(PseudoParams, {"selection": selection, "score": "prob_vote", "budget": 0.2})
    out, rep = run_pseudo(m, b, p, truth)
    assert rep["selection"]["name"] == selection
    assert rep["selected"]["count"] == len(out) > 0
    assert rep["selected"]["precision"] == 1.0  # the toy models are always right
    if selection == "balanced":
        assert len(out) == pytest.approx(0.2 * 600, abs=3)


def test_bad_selection_is_named():
    with pytest.raises(
        InputError, match=r"selection must be one of \['paper', 'balanced', 'precision'\]"
    ):
        parse_params(PseudoParams, {"selection": "best"})
    with pytest.raises(
        InputError, match=r"use must be one of \['paper', 'fitted', 'auto'\], got 'best'"
    ):
        from mersemi.train.params import VoteParams

        parse_params(VoteParams, {"use": "best"})
