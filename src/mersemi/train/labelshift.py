"""Label-shift correction of the vote (`vote.prior: em`): the class prior of the pool
re-estimated by EM (Saerens, Latinne & Decaestecker 2002) and the pool's voted
probabilities re-weighted to it.

Under label shift p(x | y) stays and the prior moves from pi_train to pi. Bayes' rule gives
the posterior under the new prior from the model's:

    p'(y | x) = (pi_y / pi_train_y) p(y | x) / sum_c (pi_c / pi_train_c) p(c | x)

and EM finds pi as the fixed point pi = mean over the pool of p'(y | x), starting from
pi_train. EM needs posteriors calibrated to pi_train, so the voted probabilities are first
calibrated on the labeled out-of-fold rows by bias-corrected temperature scaling
(softmax(log p / T + b), Alexandari et al. 2020, "Maximum likelihood with bias-corrected
calibration is hard-to-beat at label shift adaptation"): at its optimum the mean calibrated
posterior of those rows equals their class mix exactly (the NLL's gradient in b_c is
mean p_c - share_c), which plain temperature scaling does not give after oversampling. Only
pool rows are re-weighted, so CV figures are unchanged.
"""

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from ..classes import CLASS_INDEX, CLASSES
from ..errors import InputError
from .vote import VOTE, prob_cols

EPS = 1e-12


def fit_bcts(probs: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(T, b) minimising the NLL of softmax(log p / T + b) on labeled rows (b[0] = 0)."""
    logp = np.log(np.asarray(probs, dtype=np.float64) + EPS)
    n, c = logp.shape
    onehot = np.eye(c)[y]

    def nll(theta):
        t, b = np.exp(theta[0]), np.concatenate([[0.0], theta[1:]])
        z = logp / t + b
        ls = log_softmax(z, axis=1)
        q = np.exp(ls)
        g = q - onehot  # d nll / d z, per row
        grad_t = -(g * logp).sum() / t / n  # d z / d log t = -logp / t
        return -ls[np.arange(n), y].mean(), np.concatenate([[grad_t], g.mean(0)[1:]])

    res = minimize(nll, np.zeros(c), jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
    return float(np.exp(res.x[0])), np.concatenate([[0.0], res.x[1:]])


def calibrate(probs: np.ndarray, temperature: float, bias: np.ndarray) -> np.ndarray:
    return softmax(np.log(np.asarray(probs, dtype=np.float64) + EPS) / temperature + bias, axis=1)


def reweight(probs: np.ndarray, train_prior: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Bayes' rule for a new prior: p(y|x) pi_y / pi_train_y, renormalised per row."""
    w = np.asarray(probs, dtype=np.float64) * (np.asarray(prior) / np.asarray(train_prior))
    return w / w.sum(1, keepdims=True)


def em_prior(
    probs: np.ndarray, train_prior: np.ndarray, max_iter: int = 10_000, tol: float = 1e-8
) -> tuple[np.ndarray, int, bool]:
    """Saerens et al. (2002): the prior of the rows of `probs` (posteriors calibrated to
    `train_prior`). Returns (prior, iterations, converged: max change < tol)."""
    train_prior = np.asarray(train_prior, dtype=np.float64)
    prior = train_prior.copy()
    for it in range(1, max_iter + 1):
        new = reweight(probs, train_prior, prior).mean(0)
        done = np.abs(new - prior).max() < tol
        prior = new
        if done:
            return prior, it, True
    return prior, max_iter, False


def _mix(values: np.ndarray) -> dict[str, float]:
    return {c: round(float(v), 6) for c, v in zip(CLASSES, values, strict=True)}


def prior_revote(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Re-weight the voted probabilities of the pool rows (split unlabeled or test) of a
    predictions frame to the pool's prior estimated by EM; the labeled rows keep theirs.
    Returns the frame and the metrics' `prior` entry."""
    oof = ((df["split"] == "train") & (df["fold"] >= 0) & (df["label"] != "")).to_numpy()
    pool = (df["split"] != "train").to_numpy()
    if not oof.any():
        raise InputError("vote.prior em needs out-of-fold rows (split train, fold >= 0)")
    cols = prob_cols(VOTE)
    y = df.loc[oof, "label"].map(CLASS_INDEX).to_numpy()
    counts = np.bincount(y, minlength=len(CLASSES)).astype(np.float64)
    if (counts == 0).any():
        missing = [c for c, n in zip(CLASSES, counts, strict=True) if n == 0]
        raise InputError(f"vote.prior em: no labeled out-of-fold rows of class(es) {missing}")
    labeled = counts / counts.sum()
    t, b = fit_bcts(df.loc[oof, cols].to_numpy(np.float64), y)
    info = {"method": "em", "labeled": _mix(labeled), "temperature": round(t, 6)}
    info["bias"] = _mix(b)
    if not pool.any():
        return df, {**info, "estimated": info["labeled"], "iterations": 0, "pool_rows": 0}
    cal = calibrate(df.loc[pool, cols].to_numpy(np.float64), t, b)
    prior, iters, converged = em_prior(cal, labeled)
    out = df.copy()
    voted = reweight(cal, labeled, prior)
    out.loc[pool, cols] = voted
    out.loc[pool, "pred"] = [CLASSES[i] for i in voted.argmax(1)]
    changed = int((out.loc[pool, "pred"] != df.loc[pool, "pred"]).sum())
    return out, {
        **info,
        "estimated": _mix(prior),
        "iterations": iters,
        "converged": converged,
        "pool_rows": int(pool.sum()),
        "changed_predictions": changed,
    }
