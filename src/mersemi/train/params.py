"""Hyperparameters of every training step, as dataclasses with the paper's defaults.

Each CLI step takes `--params JSON` (a JSON object). Unknown keys and values of the wrong type
are an `InputError` that names them.
"""

import json
from dataclasses import dataclass, fields
from typing import Literal

from ..classes import CLASSES
from ..errors import InputError
from ..params import AT_LEAST_1, NONNEG, POSITIVE, UNIT, Range, like, option, option_error
from ..params import parse_params as _parse

# Minority classes duplicated by oversampling (the paper: sad, worried, surprise).
MINORITY = ("sad", "worried", "surprise")
# The classifier heads: audio, visual, text, fusion.
HEADS = ("A", "V", "T", "F")
PAPER_WEIGHTS = {"A": 0.7, "V": 0.5, "T": 0.4, "F": 0.7}


def head_weights(help: str):
    """A weight per head (the paper's vote weights by default), each >= 0, not all zero."""
    return option(PAPER_WEIGHTS, keys=HEADS, items=NONNEG, total=POSITIVE, help=help)


@dataclass
class Common:
    seed: int = option(0, range=NONNEG, help="random seed (folds, initialisation, batches)")
    device: Literal["auto", "cpu", "cuda"] = option(
        "auto", help="auto: CUDA when available, else the CPU"
    )
    threads: int = option(
        1, range=AT_LEAST_1, help="torch CPU threads (1: robust on shared machines)"
    )
    amp: bool = option(True, help="bf16 autocast on CUDA (ignored on CPU)")
    batch_size: int = option(512, range=AT_LEAST_1, help="training batch size")
    eval_batch_size: int = option(2048, range=AT_LEAST_1, help="batch size of predictions")
    progress: bool = option(True, help="a progress bar (a line every 30 s in a log file)")


@dataclass
class ModelParams:
    hidden: int = option(
        128, range=AT_LEAST_1, help="hidden size of the specific/invariant embeddings"
    )
    d_model: int = option(
        128, range=AT_LEAST_1, help="width inside the Transformer specificity encoders"
    )
    layers: int = option(1, range=AT_LEAST_1, help="Transformer encoder layers per modality")
    heads: int = option(4, range=AT_LEAST_1, help="attention heads (must divide d_model)")
    dropout: float = option(0.1, range=Range(0, 1, hi_open=True), help="dropout share")
    fusion_invariant: bool = option(False, help="F also sees the mean invariant embedding")
    temperature_init: float = option(
        0.1, range=POSITIVE, help="learnable InfoNCE temperature (one per loss), initial value"
    )
    # (departure: Baichuan2/HuBERT hidden states have outlier dimensions; raw input slows Adam
    # at lr 1e-4)
    standardize: bool = option(
        True, help="z-score each modality per dimension with the training rows' statistics"
    )

    def check(self) -> None:
        if self.d_model % self.heads:
            raise InputError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")


OPEN_UNIT = Range(0, 1, lo_open=True, hi_open=True)


@dataclass
class NEEParams:
    nee: bool = option(True, help="noise embedding enhancement + IMCL-NE")
    nee_steps: int = option(100, range=AT_LEAST_1, help="T, the noise schedule's steps")
    beta_start: float = option(0.001, range=OPEN_UNIT, help="first beta of the linear schedule")
    beta_end: float = option(0.1, range=OPEN_UNIT, help="last beta (>= beta_start)")

    def check(self) -> None:
        if self.beta_start > self.beta_end:
            raise InputError(
                f"need beta_start <= beta_end, got {self.beta_start} > {self.beta_end}"
            )


@dataclass
class CVParams(Common):
    folds: int = option(5, range=Range(2), help="cross-validation folds")
    epochs: int = option(40, range=AT_LEAST_1, help="at most; early stopping on validation WAF")
    patience: int = option(
        5, range=NONNEG, help="0: no early stopping, keep the best of all epochs (MERTools)"
    )
    lr: float = option(1e-4, range=POSITIVE, help="Adam learning rate")
    weight_decay: float = option(0.0, range=NONNEG, help="Adam L2 (MERTools: 1e-5)")
    oversample: bool = option(True, help="duplicate minority classes in training folds")
    oversample_classes: list = option(
        list(MINORITY), items=CLASSES, noun="class(es)", help="the classes oversampled"
    )
    oversample_target: int = option(
        850, range=AT_LEAST_1, help="count each oversampled class is brought to"
    )
    # "dataset": the paper's targets are counts over the whole labeled set, so each training
    # fold gets target x (its labeled rows / all labeled rows), keeping the paper's ratios;
    # "fold": the target count inside every training fold as given.
    oversample_scope: Literal["dataset", "fold"] = option(
        "dataset", help="dataset: the target scaled to each fold's share; fold: as given"
    )


@dataclass
class PretrainParams(Common, ModelParams, NEEParams):
    epochs: int = like(CVParams, "epochs", 10, help="pretraining epochs")
    lr: float = like(CVParams, "lr")
    weight_ne: float = option(1.0, range=NONNEG, help="weight of the IMCL-NE loss")
    weight_ae: float = option(1.0, range=NONNEG, help="weight of the IMCL-AE loss")
    include_labeled: bool = option(True, help="use labeled clips too (without their labels)")
    include_test: bool = option(
        True, help="use the test split too (MER2024 hid it in the unlabeled pool)"
    )


@dataclass
class FinetuneParams(CVParams, ModelParams, NEEParams):
    step: int = option(1, range=Range(1, 2), help="fine-tuning step (step 2: pseudo labels)")
    contrastive_weight: float = option(
        0.1, range=NONNEG, help="weight of (IMCL-NE + IMCL-AE)/2 beside the CE term"
    )
    pretrained: bool = option(True, help="initialise from the pretraining checkpoint")
    init_from_step1: bool = option(True, help="step 2 starts each fold from its step-1 model")
    weights: dict = head_weights("vote weights of the heads (early stopping watches the vote)")
    modality_dropout: float = option(
        0.0,
        range=Range(0, 1, hi_open=True),
        help="per training sample and modality, the chance its input is zeroed (as missing)",
    )


def step2_defaults() -> dict:
    """Overrides the paper makes for step 2."""
    return {"step": 2, "lr": 5e-5, "oversample_target": 1000}


@dataclass
class BaselineParams(CVParams):
    """MERTools `attention` and its main-release.py procedure: Adam with L2 1e-5, batch 32,
    100 epochs, the best validation epoch kept (no early stopping); hidden, dropout and lr are
    one point of MERTools' grid (model-tune.yaml: hidden 64/128/256, dropout 0.2-0.5,
    lr 1e-3/1e-4)."""

    hidden: int = like(ModelParams, "hidden", help="hidden size of MERTools' attention model")
    dropout: float = like(ModelParams, "dropout", 0.5)
    lr: float = like(CVParams, "lr", 1e-3)
    batch_size: int = like(CVParams, "batch_size", 32)
    epochs: int = like(CVParams, "epochs", 100, help="epochs (the best validation one kept)")
    patience: int = like(CVParams, "patience", 0, help="0: no early stopping (MERTools)")
    weight_decay: float = like(CVParams, "weight_decay", 1e-5, help="Adam L2 (MERTools)")
    standardize: bool = like(
        ModelParams, "standardize", False, help="z-score the features (MERTools feeds raw ones)"
    )
    oversample: bool = like(
        CVParams, "oversample", False, help="the MER2024 baseline does not oversample"
    )


@dataclass
class ProbeParams:
    """Linear probe (a Table 1 row): logistic regression on standardised concatenated
    features, on the fine-tuning folds (same seed and folds)."""

    seed: int = like(Common, "seed", help="random seed (the folds)")
    folds: int = like(CVParams, "folds")
    threads: int = like(Common, "threads", help="CPU threads")
    C: float = option(
        1e-3, range=POSITIVE, help="inverse L2 strength of LogisticRegression (strong L2)"
    )
    pca: int = option(
        0, range=NONNEG, help="> 0: PCA to this many components (fitted per fold) first"
    )
    max_iter: int = option(300, range=AT_LEAST_1, help="LogisticRegression iterations")


BENCH_MODELS = ("probe", "baseline")


@dataclass
class BenchParams:
    """The feature benchmark (`mersemi train feature-bench`): its seeds, and the probe's and
    the baseline's params as the workflow's `probe` and `baseline` jobs give them."""

    seeds: list = option([0], items=NONNEG, help="every row runs once per seed (train.seeds)")
    models: list = option(list(BENCH_MODELS), items=BENCH_MODELS, help="the models of each row")
    probe: dict = option({}, help="ProbeParams of the rows (the workflow's train.probe job)")
    baseline: dict = option(
        {}, help="BaselineParams of the rows (train.common + train.baseline, as that job)"
    )


# The models whose predictions pseudo labels are voted from (the paper's two, then the probe).
PSEUDO_MODELS = ("mrccl", "baseline")


@dataclass
class PseudoParams:
    thresholds: dict[str, float] = option(
        {c: 0.85 if c in ("worried", "surprise") else 0.99 for c in CLASSES},
        keys=CLASSES,
        noun="class(es)",
        items=UNIT,
        fill=True,
        help="per-class confidence threshold (a class left out keeps its default)",
    )
    # Whose confidence must pass the threshold: every agreeing model (both of the paper's
    # two), only MR-CCL, or the agreeing models' mean.
    confidence: Literal["both", "mrccl", "mean"] = option(
        "both",
        help="whose confidence must pass: every agreeing model, only MR-CCL, or their mean",
    )
    # What "confidence" is (see docs/training.md, "Pseudo labels"):
    #   prob_vote   max of the weighted mean of softmax probabilities (heads x folds)
    #   logit_sum   max of softmax(sum_k w_k log p_k): the authors' softmax of a weighted
    #               logit sum (log-probabilities differ from logits by a per-row constant)
    #   calibrated  max of softmax(log p / T), T fitted per model on out-of-fold predictions
    score: Literal["prob_vote", "logit_sum", "calibrated"] = option(
        "calibrated", help='what "confidence" is (see "Pseudo labels")'
    )
    weights: dict = head_weights("head weights of the logit_sum score (the paper's)")
    include_test: bool = option(True, help="may clips of the test split be pseudo-labeled?")
    # Which agreed clips become pseudo labels (docs/training.md, "Two profiles"):
    #   paper      the thresholds above
    #   balanced   per class the most confident, round(budget x pool x labeled class share)
    #   precision  per-class thresholds fitted on out-of-fold rows to precision_target
    selection: Literal["paper", "balanced", "precision"] = option(
        "paper", help='which agreed clips become pseudo labels (see "Two profiles")'
    )
    budget: float = option(
        0.05, range=Range(0, 1, lo_open=True), help="balanced: pseudo labels, share of the pool"
    )
    precision_target: float = option(
        0.95, range=Range(0, 1, lo_open=True), help="precision: out-of-fold precision to reach"
    )
    min_support: int = option(
        20, range=AT_LEAST_1, help="precision: out-of-fold rows a fitted threshold must cover"
    )
    sweep: list = option(
        [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.995],
        items=UNIT,
        help="thresholds of the audit's precision/coverage sweep",
    )
    # Consensus and rounds (docs/training.md, "Rounds and consensus"): a clip is kept when at
    # least min_agree of the `agree` models predict the same class and the confidence rule
    # passes over the agreeing models; round r >= 2 re-selects from step r's MR-CCL and
    # trains step r + 1 from step r.
    agree: list = option(
        list(PSEUDO_MODELS),
        items=PSEUDO_MODELS + ("probe",),
        distinct=True,
        help="the models that vote",
    )
    min_agree: int = option(
        0, range=NONNEG, help="0: all of agree; else at least this many (a strict majority)"
    )
    rounds: int = option(1, range=AT_LEAST_1, help="rounds of self-training (1: step 2 only)")
    min_new: int = option(
        0, range=NONNEG, help="> 0: stop when a round adds fewer labels than the one before"
    )

    def check(self) -> None:
        if self.min_agree and not (len(self.agree) / 2 < self.min_agree <= len(self.agree)):
            n = len(self.agree)
            raise InputError(
                f"min_agree={self.min_agree} must be a strict majority of the {n} models of "
                f"agree (> {n / 2} and <= {n}), or 0 for all"
            )
        if self.confidence not in ("both", "mean", *self.agree):
            raise InputError("confidence mrccl needs mrccl in agree")

    @property
    def needed(self) -> int:
        """How many models must agree (min_agree, 0 meaning all)."""
        return self.min_agree or len(self.agree)


@dataclass
class VoteParams:
    weights: dict = head_weights("the paper's vote weights of the heads")
    # "paper": the weights above; "fitted": weights fitted on out-of-fold predictions (CV
    # figures nested over folds, so without optimism); "auto": whichever of the two scores
    # better out of fold, the choice nested over folds. Metrics always hold all three.
    use: Literal["paper", "fitted", "auto"] = option(
        "paper", help="paper: the weights; fitted: fitted out of fold; auto: the better one"
    )
    # "em": the pool's class prior re-estimated by EM from calibrated voted probabilities and
    # the pool rows re-weighted to it (train/labelshift.py); labeled rows keep theirs.
    prior: Literal["none", "em"] = option(
        "none", help="em: re-weight the pool's votes to its prior estimated by EM (label shift)"
    )


def parse_params(cls, text: str | dict | None, base: dict | None = None, what="--params"):
    """Build `cls` from `--params` (JSON string or dict) and check the values; `base` overrides
    the defaults first (the paper's step-2 values). `what` names the source in errors."""
    return _parse(cls, text, what, base)


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
    for seed in train.get("seeds") or []:  # each chain's seed, by the `seed` declaration
        why = option_error(Common, "seed", seed)
        if why is not None:
            raise InputError(f"train.seeds: {why}")


def config_folds(train: dict) -> dict[str, int]:
    """The fold count of each cross-validated job of a config's `train:` section."""
    return {
        f"train.{job}.folds": parse_job(train, job).folds
        for job, (cls, _, _) in _JOBS.items()
        if "folds" in {f.name for f in fields(cls)}
    }
