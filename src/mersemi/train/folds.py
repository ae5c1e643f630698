"""Seeded stratified folds and per-fold training sets (oversampling, pseudo labels)."""

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from ..classes import CLASSES
from ..errors import InputError
from .oversample import oversample


@dataclass(frozen=True)
class Fold:
    k: int
    train: np.ndarray  # row indices into the dataset (may repeat: oversampled)
    train_labels: np.ndarray
    val: np.ndarray  # labeled rows only, never repeated


def check_folds(labels, n_folds: int, what: str = "folds") -> None:
    """Stratified folds need every class present at least `n_folds` times (one clip per
    validation fold); an InputError names the smallest classes otherwise."""
    names, counts = np.unique(np.asarray(labels), return_counts=True)
    short = sorted(
        (int(n), str(CLASSES[c] if isinstance(c, np.integer) else c))
        for c, n in zip(names, counts, strict=True)
        if n < n_folds
    )
    if short:
        listed = ", ".join(f"{c} {n}" for n, c in short)
        raise InputError(
            f"{what}={n_folds} needs at least {n_folds} labeled clips of every class present, "
            f"but there are: {listed} (label fewer folds or more clips)"
        )


def stratified_folds(labels: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    """Validation row positions (into `labels`) of each fold; same seed, same folds."""
    check_folds(labels, n_folds)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [val for _, val in skf.split(np.zeros(len(labels)), labels)]


def make_folds(
    labeled: np.ndarray,
    labels: np.ndarray,
    n_folds: int,
    seed: int,
    targets: dict[int, int] | None = None,
    pseudo: np.ndarray | None = None,
    pseudo_labels: np.ndarray | None = None,
    scope: str = "fold",
) -> list[Fold]:
    """Folds over the labeled rows `labeled` (dataset indices) with their `labels`.

    Each training set is the other folds' labeled rows plus the pseudo-labeled rows (which are
    never labeled clips, so never in a validation fold), then oversampled to `targets`.
    `scope` "dataset": `targets` are counts over the whole labeled set (the paper's), scaled to
    each fold by its share of the labeled rows; "fold": the counts apply to each fold as given.
    """
    if scope not in ("dataset", "fold"):
        raise ValueError(f"scope must be dataset or fold, got {scope!r}")
    labeled, labels = np.asarray(labeled), np.asarray(labels)
    if pseudo is not None and len(np.intersect1d(pseudo, labeled)):
        raise ValueError("pseudo-labeled rows overlap the labeled set")
    out = []
    for k, val_pos in enumerate(stratified_folds(labels, n_folds, seed)):
        mask = np.ones(len(labeled), bool)
        mask[val_pos] = False
        tr, tr_y = labeled[mask], labels[mask]
        if pseudo is not None and len(pseudo):
            tr = np.concatenate([tr, pseudo])
            tr_y = np.concatenate([tr_y, pseudo_labels])
        rng = np.random.default_rng([seed, k, 1])
        if targets:
            share = mask.sum() / len(labeled) if scope == "dataset" else 1.0
            fold_targets = {c: int(round(t * share)) for c, t in targets.items()}
            label_of = dict(zip(tr.tolist(), tr_y.tolist(), strict=True))
            tr = oversample(tr, tr_y, fold_targets, rng)
            tr_y = np.array([label_of[i] for i in tr.tolist()], dtype=labels.dtype)
        else:
            perm = rng.permutation(len(tr))
            tr, tr_y = tr[perm], tr_y[perm]
        out.append(Fold(k, tr, tr_y, labeled[val_pos]))
    return out
