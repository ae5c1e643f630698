"""Synthetic feature benchmark: MER2024-shaped features with a known generative structure.

Each clip has a class y and a shared latent z = mu_y + u (u ~ N(0, I_k)); every modality sees
its own noisy copy h_m = z + sigma_m * eta_m, embedded in D_m dimensions by a fixed random map,
plus class-independent private structure and isotropic noise:

    x_m = h_m A_m + r_m B_m + 0.1 * n_m

- sigma_acoustic < sigma_visual < sigma_text: every modality alone is informative but noisy at
  its own level, audio strongest as in the MER2024 baseline.
- The modalities share z, so agreement across modalities carries information that no single
  one has (fusion beats every modality; invariant features are learnable by contrast).
- Unlabeled clips come from the same distribution, with the labeled class mix; the test set
  has a shifted class mix (TEST_MIX, total-variation distance 0.131 from the labeled mix).
  Their true labels are written apart, for audits only.
- Missing modalities (`missing`, default 0.1): each clip misses each modality with that
  probability, independently (a clip drawn to miss all three keeps one at random): its row
  is zeros and `valid` False, as the store writes a clip that could not be processed. The
  masks come from their own random stream, so `missing=0` gives the features of before.
- The achieved test shift and missing shares are in every file's params (`synth.achieved`).

It serves tests, benchmarks and training work. It is not the demo: it has no videos.
"""

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_csv_atomic
from ..classes import CLASSES, MER2024_TRAIN_COUNTS
from ..clips import shard_of
from ..store import FeatureMeta, FeatureWriter

log = logging.getLogger(__name__)

DIMS = {"visual": 768, "acoustic": 1024, "text": 5120}
# Shifted class mix of the synthetic test set (sums to 1).
TEST_MIX = {
    "neutral": 0.22,
    "angry": 0.14,
    "happy": 0.26,
    "sad": 0.18,
    "worried": 0.12,
    "surprise": 0.08,
}
N_TEST = 1169
MAX_UNLABELED = 115_595


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    n_unlabeled: int = 20_000
    n_test: int = N_TEST
    latent_dim: int = 32
    private_dim: int = 16
    separation: float = 0.45  # scale of the class means in latent space
    noise: dict = field(
        default_factory=lambda: {"acoustic": 1.0, "visual": 1.5, "text": 2.0}
    )  # sigma_m, per modality
    n_shards: int = 8
    missing: float = 0.1  # probability that a clip misses a modality (per modality, per clip)


def tv_distance(a: dict[str, float], b: dict[str, float]) -> float:
    """Total-variation distance 1/2 sum_c |a_c - b_c| of two class mixes."""
    return 0.5 * sum(abs(a[c] - b[c]) for c in CLASSES)


def mix_of(y: np.ndarray) -> dict[str, float]:
    return {c: float(np.mean(y == i)) if len(y) else 0.0 for i, c in enumerate(CLASSES)}


def missing_masks(n: int, share: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """valid per modality (bool N): each entry False with probability `share`, independently;
    a row drawn False in every modality gets one modality back, chosen at random."""
    if not 0 <= share < 1:
        raise ValueError(f"missing must be in [0, 1), got {share}")
    miss = rng.random((n, len(DIMS))) < share
    full = np.flatnonzero(miss.all(1))
    miss[full, rng.integers(len(DIMS), size=len(full))] = False
    return {m: ~miss[:, j] for j, m in enumerate(DIMS)}


def achieved(y: np.ndarray, split: np.ndarray, valid: dict[str, np.ndarray]) -> dict:
    """What a draw gives: the labeled and test class mixes, their TV distance, the share of
    clips missing each modality."""
    train, test = mix_of(y[split == "train"]), mix_of(y[split == "test"])
    return {
        "labeled_mix": train,
        "test_mix": test,
        "test_tv": round(tv_distance(train, test), 6),
        "missing_share": {m: round(float(1 - v.mean()), 6) for m, v in valid.items()},
    }


def _counts(mix: dict[str, float], n: int) -> dict[str, int]:
    raw = {c: mix[c] * n for c in CLASSES}
    counts = {c: int(np.floor(v)) for c, v in raw.items()}
    # Largest remainders take the leftover clips, so counts sum to n exactly.
    for c in sorted(CLASSES, key=lambda c: raw[c] - counts[c], reverse=True)[
        : n - sum(counts.values())
    ]:
        counts[c] += 1
    return counts


def _labels(counts: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    y = np.concatenate([np.full(counts[c], i) for i, c in enumerate(CLASSES)])
    return rng.permutation(y)


def make_synth(
    out: str | Path, cfg: SynthConfig = SynthConfig(), chunk: int = 8192
) -> pd.DataFrame:
    """Write visual.h5, acoustic.h5, text.h5 and the label/manifest CSVs; return the manifest."""
    if not 0 <= cfg.n_unlabeled <= MAX_UNLABELED:
        raise ValueError(f"n_unlabeled must be in [0, {MAX_UNLABELED}], got {cfg.n_unlabeled}")
    out = Path(out)
    rng = np.random.default_rng(cfg.seed)
    valid = missing_masks(len_all(cfg), cfg.missing, np.random.default_rng([cfg.seed, 30]))
    n_train = sum(MER2024_TRAIN_COUNTS.values())
    train_mix = {c: MER2024_TRAIN_COUNTS[c] / n_train for c in CLASSES}
    y = np.concatenate(
        [
            _labels(MER2024_TRAIN_COUNTS, rng),
            _labels(_counts(train_mix, cfg.n_unlabeled), rng),
            _labels(_counts(TEST_MIX, cfg.n_test), rng),
        ]
    )
    split = np.array(["train"] * n_train + ["unlabeled"] * cfg.n_unlabeled + ["test"] * cfg.n_test)
    n = len(y)
    # Names carry no hint of split or class.
    names = np.array([f"sample_{i:08d}" for i in rng.permutation(n)], dtype=object)

    k, p = cfg.latent_dim, cfg.private_dim
    means = rng.standard_normal((len(CLASSES), k)) * cfg.separation
    z = means[y] + rng.standard_normal((n, k))
    params = {**asdict(cfg), "achieved": achieved(y, split, valid)}

    for modality, dim in DIMS.items():
        mrng = np.random.default_rng([cfg.seed, dim])
        a = mrng.standard_normal((k, dim)) / np.sqrt(k)
        b = mrng.standard_normal((p, dim)) / np.sqrt(p)
        sigma = cfg.noise[modality]
        with feature_writer(out, modality, dim, n, params) as w:
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                m = stop - start
                h = z[start:stop] + sigma * mrng.standard_normal((m, k))
                x = h @ a + mrng.standard_normal((m, p)) @ b + 0.1 * mrng.standard_normal((m, dim))
                write_rows(w, start, names[start:stop], x, valid[modality][start:stop])
        log.info("synth: wrote %s (%d x %d, sigma %.2f)", out / f"{modality}.h5", n, dim, sigma)

    return write_tables(out, names, y, split, cfg.n_shards)[0]


def len_all(cfg) -> int:
    return sum(MER2024_TRAIN_COUNTS.values()) + cfg.n_unlabeled + cfg.n_test


def write_rows(w: FeatureWriter, start: int, names, x: np.ndarray, valid: np.ndarray) -> None:
    """Rows of a synthetic set; a missing modality's row is zeros with valid False."""
    x = x.astype(np.float32)
    x[~valid] = 0.0
    w.write(start, names, x, valid)


def feature_writer(out: Path, modality: str, dim: int, n: int, params: dict) -> FeatureWriter:
    """The writer of a synthetic set's `<modality>.h5`, its attrs naming the generator's params."""
    meta = FeatureMeta(
        modality=modality, model="synthetic", layers="-", pooling="-", dim=dim,
        params={"synth": params},
    )  # fmt: skip
    return FeatureWriter(out / f"{modality}.h5", meta, n)


def write_tables(out: Path, names, y: np.ndarray, split: np.ndarray, n_shards: int):
    """The label, test-label and hidden pool-label CSVs and the manifest of a synthetic set;
    returns (manifest, truth: name, discrete of every clip)."""
    labels = [CLASSES[i] if s != "unlabeled" else "" for i, s in zip(y, split, strict=True)]
    shards = [shard_of(nm, n_shards) for nm in names]
    manifest = pd.DataFrame(
        {"name": names, "path": "", "split": split, "label": labels, "shard": shards}
    )
    truth = manifest[["name"]].assign(discrete=[CLASSES[i] for i in y])
    write_csv_atomic(truth[split == "train"], out / "labels.csv")
    write_csv_atomic(truth[split == "test"], out / "test_labels.csv")
    write_csv_atomic(truth[split == "unlabeled"], out / "unlabeled_truth.csv")
    write_csv_atomic(manifest, out / "manifest.csv")
    return manifest, truth
