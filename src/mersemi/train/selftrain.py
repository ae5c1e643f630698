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


def consensus(
    probs: list[np.ndarray], min_agree: int, confidence: str = "both", mrccl: int | None = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(agree, label, conf) of the models' probabilities `probs` (each rows x classes).

    A row agrees when at least `min_agree` models predict the same class (a strict majority,
    so that class, the label, is unique); elsewhere the label is the first model's class.
    `conf` is the confidence of the label over the agreeing models: "both" the smallest of
    their probabilities of it (every agreeing model must pass a threshold), "mean" their mean,
    "mrccl" the probability model `mrccl` (an index into `probs`) gives it. For the agreeing
    models the probability of the label is their maximum, so with two models and min_agree 2
    this is the paper's rule (select_pseudo)."""
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    if 2 * min_agree <= len(stack) or min_agree > len(stack):
        raise ValueError(f"min_agree must be a strict majority of {len(stack)}, got {min_agree}")
    votes = stack.argmax(2)
    counts = np.stack([(votes == c).sum(0) for c in range(stack.shape[2])], 1)
    agree = counts.max(1) >= min_agree
    label = np.where(agree, counts.argmax(1), votes[0])
    member = votes == label
    p_label = np.take_along_axis(stack, label[None, :, None], 2)[..., 0]
    if confidence == "both":
        conf = np.where(member, p_label, np.inf).min(0)
    elif confidence == "mean":
        conf = np.where(member, p_label, 0.0).sum(0) / member.sum(0)
    elif confidence == "mrccl" and mrccl is not None:
        conf = p_label[mrccl]
    else:
        raise ValueError(
            f"confidence must be both, mrccl (with MR-CCL) or mean, got {confidence!r}"
        )
    return agree, label, conf


def select_pseudo(
    p_mrccl: np.ndarray, p_base: np.ndarray, thresholds: np.ndarray, confidence: str = "both"
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean mask of kept rows and the predicted class of every row.

    A row is kept when both ensembles predict the same class c and the confidence passes
    thresholds[c]; `confidence` says whose: "both" (each model's max probability), "mrccl"
    (MR-CCL's only) or "mean" (the mean of the two).
    """
    agree, label, conf = consensus([p_mrccl, p_base], 2, confidence)
    return keep_confident(agree, label, conf, thresholds), label


def keep_confident(agree, label, conf, thresholds) -> np.ndarray:
    """Agreeing rows whose confidence passes their label's threshold."""
    return agree & (conf >= np.asarray(thresholds, dtype=np.float64)[label])


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
    agree, label, conf = consensus([p_mrccl, p_base], 2, confidence)
    return balanced_keep(agree, label, conf, budget, prior), label


def balanced_keep(agree, label, conf, budget: int, prior) -> np.ndarray:
    keep = np.zeros(len(label), bool)
    prior = np.asarray(prior, dtype=np.float64) / np.sum(prior)
    for c in range(len(prior)):
        idx = np.flatnonzero(agree & (label == c))
        n = min(len(idx), int(round(budget * prior[c])))
        if n:
            keep[idx[np.argsort(-conf[idx], kind="stable")[:n]]] = True
    return keep


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
    cons = consensus([p_mrccl, p_base], 2, confidence)
    return fitted_thresholds(*cons, y, target, min_support, p_mrccl.shape[1])


def fitted_thresholds(agree, label, conf, y, target, min_support, n_classes) -> np.ndarray:
    out = np.ones(n_classes)
    for c in range(n_classes):
        idx = np.flatnonzero(agree & (label == c))
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
    """The audit of the paper's two-model rule (audit_consensus of MR-CCL and the baseline)."""
    probs = {"mrccl": p_mrccl, "baseline": p_base}
    return audit_consensus(probs, 2, thresholds, confidence, sweep, truth, keep)


def audit_consensus(
    probs: dict[str, np.ndarray],
    min_agree: int,
    thresholds: np.ndarray,
    confidence: str,
    sweep: list[float],
    truth: np.ndarray | None = None,
    keep: np.ndarray | None = None,
) -> dict:
    """Counts per class, agreement rate (rows where at least `min_agree` of the models agree),
    each model's agreement with the label, and a sweep of uniform thresholds (with precision
    when the true labels of the pool are known, -1 marking unknown). `keep`: the selected rows
    when the selection is not the thresholds' (pseudo.selection)."""
    names = list(probs)
    mrccl = names.index("mrccl") if "mrccl" in names else None
    agree, pred, conf = consensus([probs[k] for k in names], min_agree, confidence, mrccl)
    kept = keep_confident(agree, pred, conf, thresholds)
    keep = kept if keep is None else keep
    votes = {k: np.asarray(probs[k]).argmax(1) for k in names}

    def share(mask, of):
        return float((mask & of).sum() / of.sum()) if of.any() else None

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
        "models": names,
        "min_agree": int(min_agree),
        # per model: the share of the agreeing rows, and of the kept ones, it agrees on
        "per_model_agreement": {
            k: {"agreeing": share(votes[k] == pred, agree), "kept": share(votes[k] == pred, keep)}
            for k in names
        },
        # per pair of models: the share of the pool they predict the same class for
        "pairwise_agreement": {
            f"{a}/{b}": float((votes[a] == votes[b]).mean()) if len(pred) else 0.0
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        },
        "confidence": confidence,
        "thresholds": {c: float(t) for c, t in zip(CLASSES, thresholds, strict=True)},
        "selected": summary(keep),
        "sweep": [],
    }
    for t in sweep:
        m = keep_confident(agree, pred, conf, np.full(len(CLASSES), t))
        result["sweep"].append({"threshold": float(t), **summary(m)})
    return result
