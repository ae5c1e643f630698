"""Weighted soft voting over the softmax scores of the classifiers."""

import numpy as np

CLASSIFIERS = ("A", "V", "T", "F")


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
