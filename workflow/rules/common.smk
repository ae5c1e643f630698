# Shared paths and helpers. Nothing here reads the manifest: cluster jobs re-parse this file.
import json
from pathlib import Path

from mersemi.codedigest import code_digest

# Rules run `python -m mersemi` from this checkout, also inside conda envs (envs/*.yaml hold
# the dependencies only).
# Doubled braces: Snakemake formats the prefix with the job's namespace.
shell.prefix(
    f"export PYTHONPATH={Path(workflow.basedir) / 'src'}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
)

RESULTS = Path(config["results"])
DATA = config["data"]
SHARDS = [f"{i:04d}" for i in range(config["shards"])]
MANIFEST = RESULTS / "manifest.csv"
SHARD_CSV = RESULTS / "shards" / "shard-{shard}.csv"


def as_json(section):
    """A config section as a compact JSON string for `--params` (quote with {params.x:q})."""
    return json.dumps(
        section, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


# Optional inputs of the manifest rule: config key -> CLI flag.
OPTIONAL_INPUTS = {
    "test_dir": "test-dir",
    "test_label_csv": "test-label-csv",
    "transcript_csv": "transcript-csv",
}
MANIFEST_INPUTS = {
    "labeled": DATA["labeled_dir"],
    "unlabeled": DATA["unlabeled_dir"],
    "labels": DATA["label_csv"],
} | {key: DATA[key] for key in OPTIONAL_INPUTS if DATA[key]}

EXTRACT = config["extract"]
MODELS = config["models"]
TINY_MODELS = Path(MODELS["tiny_dir"]) / "models.json"
FEATURES = RESULTS / "features"
# Model paths per stage (params keys), tracked as inputs so a missing one fails early.
MODEL_KEYS = ("checkpoint", "model_config", "model_dir")


def model_inputs(stage):
    """The files a stage's model is read from: the tiny-model index when the workflow writes
    the tiny models itself, else the configured paths."""
    if MODELS["tiny"]:
        return [TINY_MODELS]
    return [EXTRACT[stage][k] for k in MODEL_KEYS if EXTRACT[stage].get(k)]


def stage_params(stage, **extra):
    return as_json(EXTRACT[stage] | extra)


def labelled(flag, rows):
    """`--flag 'LABEL=PATH'` for each row, quoted for the shell."""
    return " ".join(f"{flag} {f'{label}={path}'!r}" for label, path in rows.items())


# ---- training (train.smk)

TRAIN = config["train"]
T = RESULTS / "train"
# Seeds of the whole training chain (folds, initialisation, batches); Table 1 is mean ± std.
TRAIN_SEEDS = TRAIN.get("seeds", [TRAIN["common"].get("seed", 0)])


def seed_dir(seed):
    return T if seed == TRAIN_SEEDS[0] else T / f"seed{seed}"

FEATURE_FILES = {m: FEATURES / f"{m}.h5" for m in ("acoustic", "visual", "text")}
TRAIN_CODE = code_digest("mersemi.train.cli")
# Ablations (paper, Table 1): the params each variant overrides, and its pretraining.
VARIANTS = {
    "full": {},
    "no_pretrain": {"pretrained": False},
    "no_nee": {"nee": False},
    "no_oversample": {"oversample": False},
    "no_pseudo": {},
}
# w/o pseudo labels: step 2 of the full method's step-1 models, same schedule, no pseudo labels.
STEP1_OF = {"no_pseudo": "full"}


def train_params(step, **extra):
    common = TRAIN["common"] if step in ("pretrain", "baseline", "finetune") else {}
    return as_json(common | TRAIN[step] | extra)


def pretrain_of(variant, base=T):
    return base / "pretrain" / ("no_nee" if variant == "no_nee" else "nee") / "model.pt"


def finetune_inputs(step, base=T):
    def inputs(wc):
        files = {**FEATURE_FILES, "manifest": MANIFEST}
        if VARIANTS[wc.variant].get("pretrained", True):
            files["pretrained"] = pretrain_of(wc.variant, base)
        if step == 2:
            files["init"] = (
                base / STEP1_OF.get(wc.variant, wc.variant) / "step1" / "model.pt"
            )
            if wc.variant != "no_pseudo":
                files["pseudo"] = base / wc.variant / "pseudo" / "labels.csv"
        return files

    return inputs


def finetune_flags(wc, input):
    return " ".join(
        f"--{key} {input[key]}"
        for key in ("pretrained", "init", "pseudo")
        if key in input.keys()
    )


# Table 1: label -> metrics JSON, in the paper's row order.
ABLATION_ROWS = {
    "MER2024 baseline": T / "baseline" / "metrics.json",
    "MR-CCL (full)": T / "full" / "step2" / "vote" / "metrics.json",
    "w/o contrastive pretraining": T
    / "no_pretrain"
    / "step2"
    / "vote"
    / "metrics.json",
    "w/o NEE": T / "no_nee" / "step2" / "vote" / "metrics.json",
    "w/o pseudo labels": T / "no_pseudo" / "step2" / "vote" / "metrics.json",
    "w/o oversampling": T / "no_oversample" / "step2" / "vote" / "metrics.json",
}


# The same rows over every seed (the ablations rule averages them).
ABLATION_SEED_ROWS = {
    label: [seed_dir(s) / Path(path).relative_to(T) for s in TRAIN_SEEDS]
    for label, path in ABLATION_ROWS.items()
}


# ---- report (report.smk)

REPORT_STAGES = {
    "MER2024 baseline": T / "baseline" / "metrics.json",
    "MR-CCL step 1 (voted)": T / "full" / "step1" / "vote" / "metrics.json",
    "MR-CCL step 2 (voted)": T / "full" / "step2" / "vote" / "metrics.json",
}
# Training-fold class distributions (after oversampling and pseudo labels).
REPORT_FOLDS = {
    "step 1 training folds": T / "full" / "step1" / "metrics.json",
    "step 2 training folds": T / "full" / "step2" / "metrics.json",
}
