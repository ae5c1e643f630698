"""Random duplication of chosen classes up to target counts (inside training folds only)."""

import numpy as np


def oversample(
    indices: np.ndarray, labels: np.ndarray, targets: dict[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Return `indices` plus random duplicates so that each class in `targets` has that count.

    `labels[i]` is the class of row `indices[i]`. A class already at or above its target is left
    alone; duplicates are drawn with replacement from the class's own rows. The result is
    shuffled. Only rows in `indices` are ever duplicated, so applying this to a training fold
    can never copy a validation clip.
    """
    indices = np.asarray(indices)
    labels = np.asarray(labels)
    if len(indices) != len(labels):
        raise ValueError(f"{len(indices)} indices but {len(labels)} labels")
    extra = []
    for cls, target in sorted(targets.items()):
        members = indices[labels == cls]
        need = target - len(members)
        if need > 0 and len(members) > 0:
            extra.append(rng.choice(members, size=need, replace=True))
    out = np.concatenate([indices, *extra]) if extra else indices.copy()
    return rng.permutation(out)
