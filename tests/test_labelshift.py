"""Label-shift correction (`vote.prior: em`), against Bayes' rule and a known shifted prior."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from scipy.stats import norm

from mersemi.classes import CLASSES
from mersemi.train.cli import vote_both
from mersemi.train.labelshift import calibrate, em_prior, fit_bcts, prior_revote, reweight
from mersemi.train.params import VoteParams, parse_params
from mersemi.train.vote import prob_cols

C = len(CLASSES)
PI_TRAIN = np.array([0.25, 0.24, 0.21, 0.14, 0.12, 0.04])
PI_TEST = np.array([0.10, 0.05, 0.35, 0.25, 0.10, 0.15])


def likelihoods(x: np.ndarray) -> np.ndarray:
    """p(x | y): 1-D Gaussians with means 0, 1.2, ..., 6 and unit variance (N x C)."""
    return norm.pdf(x[:, None], loc=1.2 * np.arange(C)[None, :], scale=1.0)


def draw(prior: np.ndarray, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    y = rng.choice(C, size=n, p=prior)
    return rng.normal(1.2 * y, 1.0), y


def posterior(x: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Bayes' rule by hand: p(y | x) = p(x | y) pi_y / sum_c p(x | c) pi_c."""
    joint = likelihoods(x) * prior
    return joint / joint.sum(1, keepdims=True)


def test_reweight_is_bayes_rule():
    # by hand: (0.6/0.75, 0.4/0.25) x 0.5 = (0.4, 0.8) -> (1/3, 2/3); (2/3, 2) -> (1/4, 3/4)
    got = reweight(np.array([[0.6, 0.4], [0.5, 0.5]]), [0.75, 0.25], [0.5, 0.5])
    np.testing.assert_allclose(got, [[1 / 3, 2 / 3], [0.25, 0.75]])
    # the train-prior posterior re-weighted to the test prior is the test-prior posterior
    x = np.linspace(-2, 8, 101)
    np.testing.assert_allclose(
        reweight(posterior(x, PI_TRAIN), PI_TRAIN, PI_TEST), posterior(x, PI_TEST), atol=1e-12
    )


def test_em_recovers_a_known_prior_and_keeps_the_train_prior_without_shift():
    rng = np.random.default_rng(0)
    x, _ = draw(PI_TEST, 20_000, rng)
    est, iters, converged = em_prior(posterior(x, PI_TRAIN), PI_TRAIN)
    assert converged and iters > 1
    assert np.abs(est - PI_TEST).max() < 0.02  # sampling error ~0.003-0.01 per class
    assert np.abs(PI_TRAIN - PI_TEST).max() > 0.15  # so this is not the start point
    x, _ = draw(PI_TRAIN, 20_000, rng)
    est, _, _ = em_prior(posterior(x, PI_TRAIN), PI_TRAIN)
    assert np.abs(est - PI_TRAIN).max() < 0.02
    # posteriors whose mean is the train prior exactly: the fixed point at once
    p = np.array([[0.7, 0.3], [0.3, 0.7], [0.5, 0.5]])
    est, iters, converged = em_prior(p, [0.5, 0.5])
    assert converged and iters == 1 and np.allclose(est, [0.5, 0.5])


def test_bcts_recovers_a_temperature_and_matches_the_labeled_mix():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(20_000, C)) * 1.5
    y = np.array([rng.choice(C, p=q) for q in softmax(z, axis=1)])
    over = softmax(2.0 * z, axis=1)  # over-confident by T = 2 exactly
    t, b = fit_bcts(over, y)
    assert t == pytest.approx(2.0, rel=0.05) and np.abs(b).max() < 0.1
    # a biased model (like one trained on an oversampled mix): after BCTS the mean calibrated
    # posterior of the labeled rows is their class mix (the NLL's stationarity in b)
    biased = softmax(z + np.array([0, 0, 0, 1.0, 1.0, 1.0]), axis=1)
    t, b = fit_bcts(biased, y)
    mix = np.bincount(y, minlength=C) / len(y)
    np.testing.assert_allclose(calibrate(biased, t, b).mean(0), mix, atol=1e-5)
    assert np.abs(biased.mean(0) - mix).max() > 0.05


def frame(seed: int = 0, n_lab: int = 6000, n_pool: int = 6000) -> pd.DataFrame:
    """A predictions frame whose heads give the exact train-prior posteriors of the
    Gaussian model: labeled rows at PI_TRAIN (3 folds), pool rows at PI_TEST."""
    rng = np.random.default_rng(seed)
    xl, yl = draw(PI_TRAIN, n_lab, rng)
    xp, yp = draw(PI_TEST, n_pool, rng)
    x, y = np.concatenate([xl, xp]), np.concatenate([yl, yp])
    post = posterior(x, PI_TRAIN)
    split = ["train"] * n_lab + ["test"] * n_pool
    df = pd.DataFrame(
        {
            "name": [f"c{i}" for i in range(len(x))],
            "split": split,
            "label": [CLASSES[i] for i in y],
            "fold": np.r_[np.arange(n_lab) % 3, np.full(n_pool, -1)],
            "x": x,  # not read by the vote: for the test's own Bayes rule
        }
    )
    for clf in ("A", "V", "T", "F", "vote"):
        df[prob_cols(clf)] = post
    df["pred"] = [CLASSES[i] for i in post.argmax(1)]
    return df


def test_prior_revote_moves_pool_rows_only_toward_the_true_prior():
    df = frame()
    out, info = prior_revote(df)
    lab = df["split"] == "train"
    pd.testing.assert_frame_equal(out[lab], df[lab])
    est = np.array([info["estimated"][c] for c in CLASSES])
    assert np.abs(est - PI_TEST).max() < 0.03
    np.testing.assert_allclose([info["labeled"][c] for c in CLASSES], PI_TRAIN, atol=0.02)
    assert info["temperature"] == pytest.approx(1.0, abs=0.05)  # the heads are calibrated
    assert info["changed_predictions"] > 0 and info["pool_rows"] == (~lab).sum()
    # the pool rows now carry (about) the posterior under the true test prior
    truth = posterior(df.loc[~lab, "x"].to_numpy(), PI_TEST)
    err = np.abs(out.loc[~lab, prob_cols("vote")].to_numpy() - truth).mean()
    err0 = np.abs(df.loc[~lab, prob_cols("vote")].to_numpy() - truth).mean()
    assert err < 0.015 and err < err0 / 3
    acc_before = (df.loc[~lab, "pred"] == df.loc[~lab, "label"]).mean()
    acc_after = (out.loc[~lab, "pred"] == out.loc[~lab, "label"]).mean()
    assert acc_after > acc_before


def test_vote_prior_em_keeps_cv_and_reports_the_prior():
    df = frame(n_lab=3000, n_pool=3000)
    _, none = vote_both(df, parse_params(VoteParams, {}))
    got_df, em = vote_both(df, parse_params(VoteParams, {"prior": "em"}))
    assert "prior" not in none and "prior" not in none["votes"]["paper"]
    for k in ("paper", "fitted", "auto"):
        assert em["votes"][k]["cv"] == none["votes"][k]["cv"]
        assert set(em["votes"][k]["prior"]) >= {"labeled", "estimated", "iterations"}
    assert em["cv"] == none["cv"] and em["test"]["waf"] != none["test"]["waf"]
    assert em["prior"] == em["votes"]["paper"]["prior"]
    pool = got_df["split"] == "test"
    assert np.allclose(got_df.loc[pool, prob_cols("vote")].sum(axis=1), 1.0)
