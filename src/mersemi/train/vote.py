"""Weighted soft voting over the softmax scores of the classifiers, and the re-scoring of a
predictions frame with the paper's, fitted or auto-chosen weights."""

import numpy as np
import pandas as pd

from ..classes import CLASS_INDEX, CLASSES
from ..errors import InputError

CLASSIFIERS = ("A", "V", "T", "F")
VOTE = "vote"  # the voted columns of a predictions frame


def prob_cols(clf: str) -> list[str]:
    return [f"prob_{clf}_{c}" for c in CLASSES]


def soft_vote(probs: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """sum_k w_k p_k / sum_k w_k over the classifiers named in `weights` (N x C each).

    Probabilities in, probabilities out (rows sum to 1), so the weights mean what they say
    whatever the scale of each classifier's logits.
    """
    missing = [k for k in weights if k not in probs]
    if missing:
        raise KeyError(f"no probabilities for classifier(s) {missing}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError("vote weights sum to zero")
    return (
        sum(float(w) * np.asarray(probs[k], dtype=np.float64) for k, w in weights.items()) / total
    )


def fit_weights(probs: dict[str, np.ndarray], y: np.ndarray) -> dict[str, float]:
    """Vote weights (on the simplex) minimising the log loss of the vote on labeled rows.

    Log loss rather than WAF: smooth, so a 4-parameter optimiser finds it, and it does not
    chase the argmax of a few borderline rows.
    """
    from scipy.optimize import minimize
    from scipy.special import softmax

    keys = list(probs)
    stack = np.stack([np.asarray(probs[k], dtype=np.float64)[np.arange(len(y)), y] for k in keys])

    def nll(theta):
        return -np.log(softmax(theta) @ stack + 1e-12).mean()

    res = minimize(nll, np.zeros(len(keys)), method="L-BFGS-B")
    return {k: round(float(w), 4) for k, w in zip(keys, softmax(res.x), strict=True)}


def nested_fit(
    probs: dict[str, np.ndarray], y: np.ndarray, fold: np.ndarray
) -> tuple[np.ndarray, dict[int, dict], dict[str, float]]:
    """Out-of-fold vote with fitted weights and no optimism: the rows of fold k are voted with
    weights fitted on the other folds' out-of-fold rows only. Returns (voted probabilities of
    the rows, weights per fold, weights fitted on all rows for unseen clips)."""
    voted = np.zeros_like(next(iter(probs.values())), dtype=np.float64)
    per_fold = {}
    for k in np.unique(fold):
        rest, here = fold != k, fold == k
        w = fit_weights({c: v[rest] for c, v in probs.items()}, y[rest])
        voted[here] = soft_vote({c: v[here] for c, v in probs.items()}, w)
        per_fold[int(k)] = w
    return voted, per_fold, fit_weights(probs, y)


def _waf(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, p.argmax(1), average="weighted"))


def choose(
    probs: dict[str, np.ndarray], y: np.ndarray, fold: np.ndarray, paper: dict[str, float]
) -> tuple[str, dict[str, float], dict[str, float]]:
    """`use: auto` on some out-of-fold rows: the paper's weights or fitted ones, whichever has
    the higher WAF there, the fitted vote scored nested over `fold` (ties keep the paper's).
    Returns (choice, its weights, the two WAFs)."""
    waf_paper = _waf(y, soft_vote(probs, paper))
    if len(np.unique(fold)) > 1:
        voted, _, w_fit = nested_fit(probs, y, fold)
        waf_fit = _waf(y, voted)
    else:  # one fold: nothing to nest over, so the fit cannot be scored honestly
        w_fit, waf_fit = fit_weights(probs, y), -1.0
    scores = {"paper": waf_paper, "fitted": waf_fit}
    return ("fitted", w_fit, scores) if waf_fit > waf_paper else ("paper", dict(paper), scores)


def nested_auto(
    probs: dict[str, np.ndarray], y: np.ndarray, fold: np.ndarray, paper: dict[str, float]
) -> tuple[np.ndarray, dict[int, dict], dict]:
    """Out-of-fold vote of `use: auto` without optimism: the rows of fold k are voted by the
    choice (and, if fitted, the weights) made on the other folds' rows only, the fitted
    candidate scored there nested over those folds. Returns (voted rows, per fold the choice
    and weights, the choice on all rows for unseen clips)."""
    voted = np.zeros_like(next(iter(probs.values())), dtype=np.float64)
    per_fold = {}
    for k in np.unique(fold):
        rest, here = fold != k, fold == k
        use, w, scores = choose({c: v[rest] for c, v in probs.items()}, y[rest], fold[rest], paper)
        voted[here] = soft_vote({c: v[here] for c, v in probs.items()}, w)
        per_fold[int(k)] = {"use": use, "weights": w, "cv_waf": scores}
    use, w, scores = choose(probs, y, fold, paper)
    return voted, per_fold, {"use": use, "weights": w, "cv_waf": scores}


def classifiers_of(df: pd.DataFrame) -> list[str]:
    out = []
    for col in df.columns:
        if col.startswith("prob_") and col.endswith(f"_{CLASSES[0]}"):
            clf = col[len("prob_") : -len(CLASSES[0]) - 1]
            if clf != VOTE:
                out.append(clf)
    return out


def probs_of(df: pd.DataFrame, clf: str) -> np.ndarray:
    return df[prob_cols(clf)].to_numpy(dtype=np.float64)


def revote(df: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Recompute prob_vote_* and pred with other weights."""
    have = classifiers_of(df)
    missing = [k for k in weights if k not in have]
    if missing:
        raise InputError(f"vote weights name classifier(s) {missing}; predictions hold {have}")
    voted = soft_vote({k: probs_of(df, k) for k in weights}, weights)
    df = df.copy()
    df[prob_cols(VOTE)] = voted
    df["pred"] = [CLASSES[i] for i in voted.argmax(1)]
    return df


def nested_revote(df: pd.DataFrame, paper: dict[str, float], use: str) -> tuple[pd.DataFrame, dict]:
    """Re-score with `use` "fitted" (weights fitted out of fold, nested_fit) or "auto" (the
    paper's or fitted, whichever scores better, nested_auto) over the heads of `paper`. The
    out-of-fold rows get their nested vote (no optimism); pool rows the weights chosen on all
    out-of-fold rows."""
    oof = ((df["split"] == "train") & (df["fold"] >= 0) & (df["label"] != "")).to_numpy()
    if not oof.any():
        raise InputError(f"the {use} vote needs out-of-fold rows (split train, fold >= 0)")
    sub = df[oof]
    probs = {k: probs_of(sub, k) for k in paper}
    y, fold = sub["label"].map(CLASS_INDEX).to_numpy(), sub["fold"].to_numpy()
    if use == "fitted":
        voted_oof, per_fold, weights = nested_fit(probs, y, fold)
        info = {"weights": weights, "fold_weights": per_fold}
    else:
        voted_oof, per_fold, final = nested_auto(probs, y, fold, paper)
        info = {**final, "fold_choices": per_fold}
    out = revote(df, info["weights"])
    out.loc[oof, prob_cols(VOTE)] = voted_oof
    out.loc[oof, "pred"] = [CLASSES[i] for i in voted_oof.argmax(1)]
    return out, info
