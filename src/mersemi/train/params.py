"""Hyperparameters of every training step, as dataclasses with the paper's defaults.

Each CLI step takes `--params JSON` (a JSON object). Unknown keys and values of the wrong type
are an `InputError` that names them.
"""

import json
import math
from dataclasses import dataclass, field, fields

from ..classes import CLASSES
from ..errors import InputError
from ..params import parse_params as _parse

# Minority classes duplicated by oversampling (the paper: sad, worried, surprise).
MINORITY = ("sad", "worried", "surprise")


@dataclass
class Common:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 1  # torch CPU threads (1: robust on shared, oversubscribed machines)
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    batch_size: int = 512
    eval_batch_size: int = 2048
    progress: bool = True  # tqdm bars


@dataclass
class ModelParams:
    hidden: int = 128  # hidden size of the specific/invariant embeddings
    d_model: int = 128  # width inside the Transformer specificity encoders
    layers: int = 1  # Transformer encoder layers per modality
    heads: int = 4
    dropout: float = 0.1
    fusion_invariant: bool = False  # F also sees the mean invariant embedding
    temperature_init: float = 0.1  # learnable InfoNCE temperature (one per loss)
    # z-score each modality per dimension with statistics of the training rows (departure:
    # Baichuan2/HuBERT hidden states have outlier dimensions; raw input slows Adam at lr 1e-4)
    standardize: bool = True


@dataclass
class NEEParams:
    nee: bool = True  # noise embedding enhancement + IMCL-NE
    nee_steps: int = 100  # T
    beta_start: float = 0.001
    beta_end: float = 0.1


@dataclass
class PretrainParams(Common, ModelParams, NEEParams):
    epochs: int = 10
    lr: float = 1e-4
    weight_ne: float = 1.0
    weight_ae: float = 1.0
    include_labeled: bool = True  # pretraining uses labeled clips too (without labels)
    include_test: bool = True  # ... and the test split (MER2024 hid it in the unlabeled pool)


@dataclass
class CVParams(Common):
    folds: int = 5
    epochs: int = 40  # at most (the paper); early stopping on validation WAF
    patience: int = 5  # 0: no early stopping, keep the best of all epochs (MERTools)
    lr: float = 1e-4
    weight_decay: float = 0.0  # Adam L2 (MERTools: 1e-5)
    oversample: bool = True
    oversample_classes: list = field(default_factory=lambda: list(MINORITY))
    oversample_target: int = 850
    # "dataset": the paper's targets are counts over the whole labeled set, so each training
    # fold gets target x (its labeled rows / all labeled rows), keeping the paper's ratios;
    # "fold": the target count inside every training fold as given.
    oversample_scope: str = "dataset"


@dataclass
class FinetuneParams(CVParams, ModelParams, NEEParams):
    step: int = 1
    contrastive_weight: float = 0.1  # weight of (IMCL-NE + IMCL-AE)/2 beside the CE term
    pretrained: bool = True  # initialise from the pretraining checkpoint when given
    init_from_step1: bool = True  # step 2 starts each fold from the step-1 fold model
    weights: dict = field(default_factory=lambda: {"A": 0.7, "V": 0.5, "T": 0.4, "F": 0.7})


def step2_defaults() -> dict:
    """Overrides the paper makes for step 2."""
    return {"step": 2, "lr": 5e-5, "oversample_target": 1000}


@dataclass
class BaselineParams(CVParams):
    """MERTools `attention` and its main-release.py procedure: Adam with L2 1e-5, batch 32,
    100 epochs, the best validation epoch kept (no early stopping); hidden, dropout and lr are
    one point of MERTools' grid (model-tune.yaml: hidden 64/128/256, dropout 0.2-0.5,
    lr 1e-3/1e-4)."""

    hidden: int = 128
    dropout: float = 0.5
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 100
    patience: int = 0
    weight_decay: float = 1e-5
    standardize: bool = False  # MERTools feeds raw features
    oversample: bool = False  # the MER2024 baseline does not oversample


@dataclass
class ProbeParams:
    """Linear probe (a Table 1 row): logistic regression on standardised concatenated
    features, on the fine-tuning folds (same seed and folds)."""

    seed: int = 0
    folds: int = 5
    threads: int = 1
    C: float = 1e-3  # inverse L2 strength of LogisticRegression (6,912 dims: strong L2)
    pca: int = 0  # > 0: PCA to this many components (fitted on the training fold) first
    max_iter: int = 300


@dataclass
class PseudoParams:
    thresholds: dict = field(
        default_factory=lambda: {
            "neutral": 0.99,
            "angry": 0.99,
            "happy": 0.99,
            "sad": 0.99,
            "worried": 0.85,
            "surprise": 0.85,
        }
    )
    # Whose confidence must pass the threshold: both models, only MR-CCL, or their mean.
    confidence: str = "both"  # both | mrccl | mean
    # What "confidence" is (see docs/training.md, "Pseudo labels"):
    #   prob_vote   max of the weighted mean of softmax probabilities (heads x folds)
    #   logit_sum   max of softmax(sum_k w_k log p_k): the authors' softmax of a weighted
    #               logit sum (log-probabilities differ from logits by a per-row constant)
    #   calibrated  max of softmax(log p / T), T fitted per model on out-of-fold predictions
    score: str = "calibrated"
    # Head weights of the logit_sum score (the paper's vote weights).
    weights: dict = field(default_factory=lambda: {"A": 0.7, "V": 0.5, "T": 0.4, "F": 0.7})
    include_test: bool = True  # may clips of the test split be pseudo-labeled?
    # Which agreed clips become pseudo labels (docs/training.md, "Two profiles"):
    #   paper      the thresholds above
    #   balanced   per class the most confident, round(budget x pool x labeled class share)
    #   precision  per-class thresholds fitted on out-of-fold rows to precision_target
    selection: str = "paper"
    budget: float = 0.05  # balanced: pseudo labels as a share of the pool
    precision_target: float = 0.95  # precision: per-class out-of-fold precision to reach
    min_support: int = 20  # precision: out-of-fold rows a fitted threshold must cover
    sweep: list = field(
        default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995]
    )


@dataclass
class VoteParams:
    weights: dict = field(default_factory=lambda: {"A": 0.7, "V": 0.5, "T": 0.4, "F": 0.7})
    # "paper": the weights above; "fitted": weights fitted on out-of-fold predictions (CV
    # figures nested over folds, so without optimism); "auto": whichever of the two scores
    # better out of fold, the choice nested over folds. Metrics always hold all three.
    use: str = "paper"


def parse_params(cls, text: str | dict | None, base: dict | None = None, what="--params"):
    """Build `cls` from `--params` (JSON string or dict) and check the values; `base` overrides
    the defaults first (the paper's step-2 values). `what` names the source in errors."""
    params = _parse(cls, text, what, base)
    _validate(params, what)
    return params


# The workflow's training jobs, each from the config's `train:` section: (params class, the
# sections merged in order, what the job itself fixes). `common` goes to pretrain, baseline
# and both fine-tuning steps; step 2 is `finetune` with `step2` on top, on the paper's step-2
# defaults (`parse_finetune`).
CONFIG_STEPS = (
    (PretrainParams, ("common", "pretrain"), None),
    (BaselineParams, ("common", "baseline"), None),
    (FinetuneParams, ("common", "finetune"), {"step": 1}),
    (FinetuneParams, ("common", "finetune", "step2"), {"step": 2}),
    (ProbeParams, ("probe",), None),
    (PseudoParams, ("pseudo",), None),
    (VoteParams, ("vote",), None),
)
# A job by the name of its last section (the rules' names: "step2" is fine-tuning step 2).
_JOBS = {sections[-1]: (cls, sections, fixed) for cls, sections, fixed in CONFIG_STEPS}

# Ablations (paper, Table 1): what each variant overrides in both fine-tuning steps. (Which
# pretraining and step-1 models a variant starts from is the workflow's wiring.)
VARIANTS = {
    "full": {},
    "no_pretrain": {"pretrained": False},
    "no_nee": {"nee": False},
    "no_oversample": {"oversample": False},
    "no_pseudo": {},
}


def train_seeds(train: dict) -> list[int]:
    """The seeds of the training chains (`train.seeds`; default: the one of `train.common`)."""
    return train.get("seeds", [(train.get("common") or {}).get("seed", 0)])


def job_params(train: dict, job: str, variant: str | None = None, **extra) -> dict:
    """The `--params` object of the workflow's `job` (pretrain, baseline, finetune, step2,
    probe, pseudo, vote): its sections of the config's `train:` section merged in order, what
    the job fixes (the fine-tuning step), the `variant`'s overrides, then `extra` (a chain's
    seed, the pretraining's NEE switch). The one place these are merged."""
    _, sections, fixed = _JOBS[job]
    merged = {}
    for sec in sections:
        merged |= train.get(sec) or {}
    return merged | (fixed or {}) | (VARIANTS[variant] if variant else {}) | extra


def parse_job(train: dict, job: str, **kw):
    """What the CLI of `job` builds from `job_params(train, job, **kw)`."""
    cls = _JOBS[job][0]
    given = job_params(train, job, **kw)
    if cls is FinetuneParams:
        return parse_finetune(given, what=f"train.{job}")
    return parse_params(cls, given, what=f"train.{job}")


def parse_finetune(text: str | dict | None, step: int | None = None, what="--params"):
    """Fine-tuning step 1 or 2, on that step's defaults (the paper's step-2 values for 2): the
    step is `step` (the CLI's `--step`) or the one `text` names (the workflow's way), and the
    two must agree."""
    parse_params(FinetuneParams, text, what=what)  # the JSON, keys, types, the step's range
    given = json.loads(text) if isinstance(text, str) and text.strip() else text
    named = (given or {}).get("step")
    if step is not None and named is not None and named != step:
        raise InputError(f"{what} step={named} contradicts --step {step}")
    step = step or named or 1
    base = step2_defaults() if step == 2 else {"step": 1}
    return parse_params(FinetuneParams, text, base, what)


def check_train_config(train: dict) -> None:
    """Check every job of a config's `train:` section as its CLI would, so a bad value stops
    the workflow when it loads, not after hours of extraction."""
    for sec in ("common", "finetune", "step2"):
        if "step" in (train.get(sec) or {}):
            raise InputError(
                f"train.{sec}: step is not an option here (the workflow runs both steps)"
            )
    for job in _JOBS:
        parse_job(train, job)


def config_folds(train: dict) -> dict[str, int]:
    """The fold count of each cross-validated job of a config's `train:` section."""
    return {
        f"train.{job}.folds": parse_job(train, job).folds
        for job, (cls, _, _) in _JOBS.items()
        if "folds" in {f.name for f in fields(cls)}
    }


def _validate(p, what: str = "--params") -> None:
    def bad(msg):
        raise InputError(f"{what}: {msg}")

    if hasattr(p, "device") and p.device not in ("auto", "cpu", "cuda"):
        bad(f"device must be auto, cpu or cuda, got {p.device!r}")
    if hasattr(p, "d_model") and p.d_model % p.heads:
        bad(f"d_model ({p.d_model}) must be divisible by heads ({p.heads})")
    if hasattr(p, "oversample_classes"):
        unknown = [c for c in p.oversample_classes if c not in CLASSES]
        if unknown:
            bad(f"oversample_classes: unknown class(es) {unknown}")
    if hasattr(p, "weights"):
        unknown = sorted(set(p.weights) - {"A", "V", "T", "F"})
        if unknown or not p.weights:
            bad(f"weights: keys must be among A, V, T, F, got {sorted(p.weights)}")
        for k, w in p.weights.items():
            if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w < math.inf:
                bad(f"weights: {k}={w!r} must be a finite number >= 0")
        if sum(p.weights.values()) <= 0:
            bad("weights must not all be zero")
    if hasattr(p, "thresholds"):
        unknown = sorted(set(p.thresholds) - set(CLASSES))
        if unknown:
            bad(f"thresholds: unknown class(es) {unknown}")
        defaults = PseudoParams().thresholds
        p.thresholds = {c: p.thresholds.get(c, defaults[c]) for c in CLASSES}
        for c, t in p.thresholds.items():
            if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 1:
                bad(f"thresholds: {c}={t!r} must be a number in [0, 1]")
        p.thresholds = {c: float(t) for c, t in p.thresholds.items()}
    if hasattr(p, "sweep"):
        for t in p.sweep:
            if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 1:
                bad(f"sweep: {t!r} must be a number in [0, 1]")
    if hasattr(p, "confidence") and p.confidence not in ("both", "mrccl", "mean"):
        bad(f"confidence must be both, mrccl or mean, got {p.confidence!r}")
    if hasattr(p, "oversample_scope") and p.oversample_scope not in ("dataset", "fold"):
        bad(f"oversample_scope must be dataset or fold, got {p.oversample_scope!r}")
    if hasattr(p, "score") and p.score not in ("prob_vote", "logit_sum", "calibrated"):
        bad(f"score must be prob_vote, logit_sum or calibrated, got {p.score!r}")
    if hasattr(p, "selection"):
        if p.selection not in ("paper", "balanced", "precision"):
            bad(f"selection must be paper, balanced or precision, got {p.selection!r}")
        if not 0 <= p.budget <= 1 or not 0 < p.precision_target <= 1 or p.min_support < 1:
            bad("need 0 <= budget <= 1, 0 < precision_target <= 1 and min_support >= 1")
    if hasattr(p, "use") and p.use not in ("paper", "fitted", "auto"):
        bad(f"use must be paper or fitted or auto, got {p.use!r}")
    if hasattr(p, "beta_start") and not 0 < p.beta_start <= p.beta_end < 1:
        bad("need 0 < beta_start <= beta_end < 1")
