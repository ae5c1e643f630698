"""Self-training: pseudo labels where MR-CCL and the baseline agree and are confident."""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from ..classes import CLASSES

SCORES = ("prob_vote", "logit_sum", "calibrated")
SELECTIONS = ("paper", "balanced", "precision")
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


def _joint_confidence(p_mrccl, p_base, confidence: str) -> np.ndarray:
    ca, cb = p_mrccl.max(1), p_base.max(1)
    return {"both": np.minimum(ca, cb), "mrccl": ca, "mean": (ca + cb) / 2}[confidence]


def select_balanced(
    p_mrccl: np.ndarray,
    p_base: np.ndarray,
    budget: int,
    prior: np.ndarray,
    confidence: str = "both",
) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced selection (as in class-balanced self-training, Zou et al. 2018): of the
    rows where both models agree, class c keeps its round(budget x prior[c]) most confident
    ones (confidence as in select_pseudo: the smaller of the two for "both"), so the pseudo
    labels follow the class mix `prior` instead of the classes the models are surest of."""
    a = p_mrccl.argmax(1)
    agree = a == p_base.argmax(1)
    conf = _joint_confidence(p_mrccl, p_base, confidence)
    keep = np.zeros(len(a), bool)
    prior = np.asarray(prior, dtype=np.float64) / np.sum(prior)
    for c in range(p_mrccl.shape[1]):
        idx = np.flatnonzero(agree & (a == c))
        n = min(len(idx), int(round(budget * prior[c])))
        if n:
            keep[idx[np.argsort(-conf[idx], kind="stable")[:n]]] = True
    return keep, a


def precision_thresholds(
    p_mrccl: np.ndarray,
    p_base: np.ndarray,
    y: np.ndarray,
    target: float,
    confidence: str = "both",
    min_support: int = 20,
) -> np.ndarray:
    """Per-class thresholds fitted on labeled out-of-fold rows: for class c the smallest
    threshold at which the rows both models give c, confident at least that much, are right
    at least `target` of the time, over at least `min_support` rows (1.0: no threshold
    reaches it, the class gets no pseudo label)."""
    a = p_mrccl.argmax(1)
    agree = a == p_base.argmax(1)
    conf = _joint_confidence(p_mrccl, p_base, confidence)
    out = np.ones(p_mrccl.shape[1])
    for c in range(p_mrccl.shape[1]):
        idx = np.flatnonzero(agree & (a == c))
        if len(idx) < min_support:
            continue
        order = idx[np.argsort(-conf[idx], kind="stable")]
        correct = np.cumsum(y[order] == c)
        n = np.arange(1, len(order) + 1)
        ok = np.flatnonzero((correct / n >= target) & (n >= min_support))
        if len(ok):
            # the largest prefix that reaches the target; ties at its confidence included
            out[c] = float(conf[order[ok[-1]]])
    return out


def audit(
    p_mrccl: np.ndarray,
    p_base: np.ndarray,
    thresholds: np.ndarray,
    confidence: str,
    sweep: list[float],
    truth: np.ndarray | None = None,
    keep: np.ndarray | None = None,
) -> dict:
    """Counts per class, agreement rate and a sweep of uniform thresholds (with precision when
    the true labels of the pool are known, -1 marking unknown). `keep`: the selected rows
    when the selection is not the thresholds' (pseudo.selection)."""
    kept, pred = select_pseudo(p_mrccl, p_base, thresholds, confidence)
    keep = kept if keep is None else keep
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
