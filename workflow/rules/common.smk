# Shared paths and helpers, and the inventory of the input videos (mersemi.inventory).
import json
import logging
import shlex
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

# This checkout's package, whatever `mersemi` the interpreter has installed.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from mersemi.clips import SHARD_STEM, Columns
from mersemi.codedigest import code_digest
from mersemi.configcheck import check_config
from mersemi.errors import InputError, file_system_error, one_line
from mersemi.extract.cli import STAGES
from mersemi.extract.common import stage_section
from mersemi.inventory import read_inventory, update_inventory
from mersemi.manifest import label_clips
from mersemi.train.folds import check_folds
from mersemi.train.params import config_folds

# Rules run `python -m mersemi` from this checkout, also inside conda envs (envs/*.yaml hold
# the dependencies only). Without conda, `python` is the interpreter running Snakemake, so
# `.venv/bin/snakemake` works without activating the venv.
# Doubled braces: Snakemake formats the prefix with the job's namespace.
_PATH = (
    ""
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    else f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; '
)
_SRC = shlex.quote(str(Path(workflow.basedir) / "src"))
shell.prefix(f"{_PATH}export PYTHONPATH={_SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

RESULTS = Path(config["results"])
# Logs and rule benchmarks of this run, beside its results (one folder per config).
LOGS = RESULTS / "logs"
BENCH = RESULTS / "benchmarks"
DATA = config["data"]
INVENTORY_DIR = RESULTS / "inventory"
CLIPS = INVENTORY_DIR / "clips.csv"
# Per-shard files are named by mersemi.clips (SHARD_STEM keeps `{shard}` as the wildcard).
SHARD_CSV = INVENTORY_DIR / f"{SHARD_STEM}.csv"
TRANSCRIPTS_CSV = INVENTORY_DIR / "transcripts" / f"{SHARD_STEM}.csv"
MANIFEST = RESULTS / "manifest.csv"
SPLITS = RESULTS / "splits.csv"  # the manifest without labels (pretraining)
CHECKS = RESULTS / "checks"


def fail(message):
    """Stop loading with one line on the terminal (no traceback)."""
    print(f"mersemi: error: {one_line(message)}", file=sys.stderr)
    sys.exit(1)


# Every options section (extraction and training) before anything is read or written.
try:
    check_config(config)
except InputError as e:
    fail(e)


def load_inventory():
    """Update the inventory from the video folders (main process only, writing just the
    files whose content changed), or read it as the main process left it (cluster jobs,
    which must not see the folders change under a running workflow)."""
    if not workflow.is_main_process:
        inventory = read_inventory(INVENTORY_DIR)
        if inventory is None:
            fail(
                f"{INVENTORY_DIR}: no inventory (start the workflow from the main process)"
            )
        return inventory
    folders = {
        "labeled": DATA["labeled_dir"],
        "unlabeled": DATA["unlabeled_dir"],
        "test": DATA["test_dir"],
    }
    columns = Columns(name=DATA["columns"]["name"], text=DATA["columns"]["text"])
    try:
        if DATA["demo"]:
            from mersemi.demo.videos import ensure_demo

            ensure_demo(Path(DATA["label_csv"]).parent, DATA["demo_seed"])
        return update_inventory(
            INVENTORY_DIR, folders, config["shards"], DATA["transcript_csv"], columns
        )
    except InputError as e:
        fail(e)
    except OSError as e:  # a read-only or full results folder: one line, no traceback
        found = file_system_error(e)
        if found is None:
            raise
        fail(found[0])


logging.getLogger("mersemi.inventory").setLevel(logging.INFO)
logging.getLogger("mersemi.inventory").addHandler(logging.StreamHandler())
INVENTORY = load_inventory()
SHARDS = INVENTORY.shards


def shell_quote(value):
    """One shell word, for values built in Python (`{x:q}` quotes those Snakemake formats)."""
    return shlex.quote(str(value))


def as_json(section):
    """A config section as a compact JSON string for `--params` (quote with {params.x:q})."""
    return json.dumps(
        section, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


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
    """A stage's `--params` JSON: its section, plus `extract.recipe` for the stages it
    changes (faces, visual, acoustic, text)."""
    return as_json(stage_section(EXTRACT, stage) | extra)


def labelled(flag, rows):
    """`--flag 'LABEL=PATH'` for each row, quoted for the shell."""
    return " ".join(
        f"{flag} {shell_quote(f'{label}={path}')}" for label, path in rows.items()
    )


# ---- training (train.smk)

TRAIN = config["train"]
T = RESULTS / "train"
# Seeds of the whole training chain (folds, initialisation, batches); Table 1 is mean ± std.
TRAIN_SEEDS = TRAIN.get("seeds", [TRAIN["common"].get("seed", 0)])


def check_labels():
    """The labels, and the folds they must fill, at load (main process): a bad row or too few
    clips of a class for the folds stops the run here, not after the extraction. (The test
    labels, which only score, are checked by the manifest job.)"""
    if not workflow.is_main_process:
        return
    columns = Columns(**DATA["columns"])
    try:
        manifest = label_clips(INVENTORY.clips, DATA["label_csv"], None, columns)
        labels = manifest.loc[manifest["split"] == "train", "label"]
        for what, n_folds in config_folds(TRAIN).items():
            check_folds(labels, n_folds, f"label CSV {DATA['label_csv']}: {what}")
    except InputError as e:
        fail(e)


check_labels()


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
        f"--{key} {shell_quote(input[key])}"
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
