"""Self-training: pseudo labels where MR-CCL and the baseline agree and are confident."""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from ..classes import CLASSES

SCORES = ("prob_vote", "logit_sum", "calibrated")
EPS = 1e-12


def logit_sum(probs: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """softmax(sum_k w_k log p_k): the authors' softmax of a weighted sum of logits.

    log p_k differs from the logits of head k by a per-row constant, which softmax drops, so
    this equals the logit-sum softmax exactly for one model and, over folds, uses the log of
    the fold-averaged probabilities. With weights summing to more than 1 it is sharper than
    any head: the paper's 0.99 is reached far more often than by a mean of probabilities.
    """
    z = sum(float(w) * np.log(np.asarray(probs[k]) + EPS) for k, w in weights.items())
    return softmax(z, axis=1)


def fit_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """T minimising the NLL of softmax(log p / T) on labeled (out-of-fold) rows."""
    logp = np.log(np.asarray(probs) + EPS)

    def nll(log_t):
        return -log_softmax(logp / np.exp(log_t), axis=1)[np.arange(len(y)), y].mean()

    return float(np.exp(minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded").x))


def calibrate(probs: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(np.log(np.asarray(probs) + EPS) / temperature, axis=1)


def select_pseudo(
    p_mrccl: np.ndarray, p_base: np.ndarray, thresholds: np.ndarray, confidence: str = "both"
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean mask of kept rows and the predicted class of every row.

    A row is kept when both ensembles predict the same class c and the confidence passes
    thresholds[c]; `confidence` says whose: "both" (each model's max probability), "mrccl"
    (MR-CCL's only) or "mean" (the mean of the two).
    """
    a, b = p_mrccl.argmax(1), p_base.argmax(1)
    ca, cb = p_mrccl.max(1), p_base.max(1)
    thr = np.asarray(thresholds, dtype=np.float64)[a]
    if confidence == "both":
        ok = (ca >= thr) & (cb >= thr)
    elif confidence == "mrccl":
        ok = ca >= thr
    elif confidence == "mean":
        ok = (ca + cb) / 2 >= thr
    else:
        raise ValueError(f"confidence must be both, mrccl or mean, got {confidence!r}")
    return (a == b) & ok, a


def audit(
    p_mrccl: np.ndarray,
    p_base: np.ndarray,
    thresholds: np.ndarray,
    confidence: str,
    sweep: list[float],
    truth: np.ndarray | None = None,
) -> dict:
    """Counts per class, agreement rate and a sweep of uniform thresholds (with precision when
    the true labels of the pool are known, -1 marking unknown)."""
    keep, pred = select_pseudo(p_mrccl, p_base, thresholds, confidence)
    agree = p_mrccl.argmax(1) == p_base.argmax(1)

    def summary(mask):
        out = {
            "count": int(mask.sum()),
            "per_class": {c: int((mask & (pred == i)).sum()) for i, c in enumerate(CLASSES)},
        }
        if truth is not None:
            known = mask & (truth >= 0)
            out["precision"] = float((pred[known] == truth[known]).mean()) if known.any() else None
            out["precision_per_class"] = {
                c: (
                    float((truth[known & (pred == i)] == i).mean())
                    if (known & (pred == i)).any()
                    else None
                )
                for i, c in enumerate(CLASSES)
            }
        return out

    result = {
        "pool": int(len(pred)),
        "agreement_rate": float(agree.mean()) if len(agree) else 0.0,
        "confidence": confidence,
        "thresholds": {c: float(t) for c, t in zip(CLASSES, thresholds, strict=True)},
        "selected": summary(keep),
        "sweep": [],
    }
    for t in sweep:
        m, _ = select_pseudo(p_mrccl, p_base, np.full(len(CLASSES), t), confidence)
        result["sweep"].append({"threshold": float(t), **summary(m)})
    return result
