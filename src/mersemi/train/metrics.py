"""Challenge metrics: WAF (weighted F1), accuracy, per-class F1, confusion matrix."""

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from ..classes import CLASSES


def waf(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(f1_score(y_true, y_pred, average="weighted", labels=range(len(CLASSES))))


def report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    labels = list(range(len(CLASSES)))
    per = f1_score(y_true, y_pred, average=None, labels=labels, zero_division=0)
    return {
        "n": int(len(y_true)),
        "waf": waf(y_true, y_pred),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_per_class": {c: float(f) for c, f in zip(CLASSES, per, strict=True)},
        "confusion": {
            "labels": list(CLASSES),
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }
