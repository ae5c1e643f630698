"""Second synthetic profile (`mersemi synth --profile speakers`): speaker-structured features.

The default profile (`mersemi.demo.synth`) draws every clip independently and makes audio the
strongest modality; the method's defaults were tuned on it. This profile has the structure of
the MER2024 data that the default lacks:

- **Speakers shared across modalities.** Each clip belongs to a speaker; the speaker adds an
  offset s_spk to the shared latent (z = mu_y + s_spk + u) and a speaker-private component to
  every modality, so identity shows in all three. Speakers have their own class mix
  (Dirichlet around the labeled mix), so speaker and class are correlated in training.
- **A test split of unseen speakers** (disjoint from the labeled and unlabeled speakers) with
  a shifted class mix, hidden in the pool like MER2024's: `test_shift` is its total-variation
  distance from the labeled mix (default 0.25), along the line from the labeled mix through
  `mersemi.demo.synth.TEST_MIX` (its own distance, 0.1307, gives the mix of before; below
  0.314, where `angry` would reach 0). The achieved distance after rounding the counts is in the
  files' params (`synth.achieved.test_tv`).
- **Missing modalities** (`missing`, as the default profile: zeros and valid False).
- **Ambiguous pool clips.** A share (`ambiguous`, 30 %) of the unlabeled clips are two-class
  mixtures: their class mean is (1 - lam) mu_a + lam mu_b with lam ~ U(0.3, 0.5); the hidden
  label is the majority class a. Test clips are not mixtures.
- **A configurable order of modality strength** (`order`, strongest first; text by default):
  the noise levels `levels` are given to the modalities in that order.

Outputs are those of the default profile (visual/acoustic/text.h5, labels.csv,
test_labels.csv, unlabeled_truth.csv, manifest.csv) plus `pool_audit.csv`
(name, split, speaker, discrete, ambiguous, second) for audits: never a training input.
"""

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..atomic import write_csv_atomic
from ..classes import CLASSES, MER2024_TRAIN_COUNTS
from .synth import (
    DIMS,
    MAX_UNLABELED,
    N_TEST,
    TEST_MIX,
    _counts,
    _labels,
    achieved,
    feature_writer,
    len_all,
    missing_masks,
    tv_distance,
    write_rows,
    write_tables,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeakerSynthConfig:
    seed: int = 0
    n_unlabeled: int = 20_000
    n_test: int = N_TEST
    n_speakers: int = 300  # speakers of the labeled and unlabeled clips
    n_test_speakers: int = 80  # speakers of the test clips only (unseen in training)
    latent_dim: int = 32
    private_dim: int = 16
    separation: float = 0.5  # scale of the class means (linear probe test WAF ~74 %)
    speaker_scale: float = 0.6  # std of the speaker offset in latent space
    speaker_private: float = 1.0  # std of the speaker's component in each modality
    speaker_concentration: float = 2.0  # Dirichlet concentration of a speaker's class mix
    ambiguous: float = 0.3  # share of unlabeled clips that are two-class mixtures
    order: tuple = ("text", "acoustic", "visual")  # modality strength, strongest first
    levels: tuple = (1.0, 1.5, 2.0)  # noise sigma given to the modalities in `order`
    n_shards: int = 8
    test_shift: float = 0.25  # TV distance of the test class mix from the labeled mix
    missing: float = 0.1  # probability that a clip misses a modality (per modality, per clip)

    def noise(self) -> dict[str, float]:
        if sorted(self.order) != sorted(DIMS) or len(self.levels) != len(DIMS):
            raise ValueError(f"order must name {sorted(DIMS)} once each, got {self.order}")
        return dict(zip(self.order, map(float, self.levels), strict=True))


def shifted_mix(train_mix: dict[str, float], shift: float) -> dict[str, float]:
    """The class mix at TV distance `shift` from `train_mix`, on the line through TEST_MIX
    (TV is linear along it while every share stays >= 0)."""
    tv0 = tv_distance(train_mix, TEST_MIX)
    t = shift / tv0
    drop = [
        train_mix[c] / (train_mix[c] - TEST_MIX[c]) for c in CLASSES if TEST_MIX[c] < train_mix[c]
    ]
    if not 0 <= t < min(drop):
        raise ValueError(f"test_shift must be in [0, {tv0 * min(drop):.3f}), got {shift}")
    return {c: train_mix[c] + t * (TEST_MIX[c] - train_mix[c]) for c in CLASSES}


def _speakers_for(y, weights, rng) -> np.ndarray:
    """A speaker per clip: for class c, drawn with probability proportional to each speaker's
    weight of c (weights: S x C), so speakers keep their own class mix."""
    spk = np.empty(len(y), np.int64)
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(y == c)
        p = weights[:, c] / weights[:, c].sum()
        spk[idx] = rng.choice(len(p), size=len(idx), p=p)
    return spk


def make_speaker_synth(
    out, cfg: SpeakerSynthConfig = SpeakerSynthConfig(), chunk: int = 8192
) -> pd.DataFrame:
    """Write the speakers profile to `out`; return the manifest."""
    from pathlib import Path

    if not 0 <= cfg.n_unlabeled <= MAX_UNLABELED:
        raise ValueError(f"n_unlabeled must be in [0, {MAX_UNLABELED}], got {cfg.n_unlabeled}")
    if not 0 <= cfg.ambiguous <= 1:
        raise ValueError(f"ambiguous must be in [0, 1], got {cfg.ambiguous}")
    noise = cfg.noise()
    out = Path(out)
    rng = np.random.default_rng([cfg.seed, 22])
    n_cls = len(CLASSES)
    n_train = sum(MER2024_TRAIN_COUNTS.values())
    train_mix = {c: MER2024_TRAIN_COUNTS[c] / n_train for c in CLASSES}
    test_mix = shifted_mix(train_mix, cfg.test_shift)
    valid = missing_masks(len_all(cfg), cfg.missing, np.random.default_rng([cfg.seed, 30, 22]))
    y_tr = _labels(MER2024_TRAIN_COUNTS, rng)
    y_un = _labels(_counts(train_mix, cfg.n_unlabeled), rng)
    y_te = _labels(_counts(test_mix, cfg.n_test), rng)
    y = np.concatenate([y_tr, y_un, y_te])
    split = np.array(["train"] * n_train + ["unlabeled"] * cfg.n_unlabeled + ["test"] * cfg.n_test)
    n = len(y)

    mix = np.array([train_mix[c] for c in CLASSES])
    w_seen = rng.dirichlet(cfg.speaker_concentration * n_cls * mix, size=cfg.n_speakers)
    w_test = rng.dirichlet(
        cfg.speaker_concentration * n_cls * np.array([test_mix[c] for c in CLASSES]),
        size=cfg.n_test_speakers,
    )
    spk = np.concatenate(
        [
            _speakers_for(y_tr, w_seen, rng),
            _speakers_for(y_un, w_seen, rng),
            cfg.n_speakers + _speakers_for(y_te, w_test, rng),
        ]
    )
    n_spk = cfg.n_speakers + cfg.n_test_speakers

    k, p = cfg.latent_dim, cfg.private_dim
    means = rng.standard_normal((n_cls, k)) * cfg.separation
    # Ambiguous unlabeled clips: a mixture of their class a and a second class b.
    ambiguous = np.zeros(n, bool)
    second = np.full(n, -1)
    un = np.flatnonzero(split == "unlabeled")
    amb = rng.choice(un, size=int(round(cfg.ambiguous * len(un))), replace=False)
    ambiguous[amb] = True
    second[amb] = (y[amb] + rng.integers(1, n_cls, size=len(amb))) % n_cls
    lam = np.zeros(n)
    lam[amb] = rng.uniform(0.3, 0.5, size=len(amb))
    center = (1 - lam)[:, None] * means[y] + lam[:, None] * means[np.maximum(second, 0)]
    offsets = rng.standard_normal((n_spk, k)) * cfg.speaker_scale
    z = center + offsets[spk] + rng.standard_normal((n, k))
    names = np.array([f"sample_{i:08d}" for i in rng.permutation(n)], dtype=object)

    params = {**asdict(cfg), "profile": "speakers", "achieved": achieved(y, split, valid)}
    for modality, dim in DIMS.items():
        mrng = np.random.default_rng([cfg.seed, dim, 22])
        a = mrng.standard_normal((k, dim)) / np.sqrt(k)
        b = mrng.standard_normal((p, dim)) / np.sqrt(p)
        spk_private = mrng.standard_normal((n_spk, p)) * cfg.speaker_private
        sigma = noise[modality]
        with feature_writer(out, modality, dim, n, params) as w:
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                m = stop - start
                h = z[start:stop] + sigma * mrng.standard_normal((m, k))
                r = spk_private[spk[start:stop]] + mrng.standard_normal((m, p))
                x = h @ a + r @ b + 0.1 * mrng.standard_normal((m, dim))
                write_rows(w, start, names[start:stop], x, valid[modality][start:stop])
        log.info(
            "synth speakers: wrote %s (%d x %d, sigma %.2f)", out / f"{modality}.h5", n, dim, sigma
        )

    manifest, truth = write_tables(out, names, y, split, cfg.n_shards)
    audit = truth.assign(
        split=split,
        speaker=[f"spk{s:04d}" for s in spk],
        ambiguous=ambiguous,
        second=[CLASSES[s] if s >= 0 else "" for s in second],
    )[["name", "split", "speaker", "discrete", "ambiguous", "second"]]
    write_csv_atomic(audit, out / "pool_audit.csv")
    return manifest
