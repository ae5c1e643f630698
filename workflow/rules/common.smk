# Shared paths and helpers, and the inventory of the input videos (mersemi.inventory).
import atexit
import json
import logging
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

from mersemi.clips import SHARD_STEM, Columns
from mersemi.codedigest import code_digest
from mersemi.configcheck import check_config
from mersemi.errors import InputError, file_system_error, one_line
from mersemi.extract.cli import STAGES
from mersemi.extract.common import stage_section
from mersemi.inventory import read_inventory, update_inventory
from mersemi.manifest import label_clips
from mersemi.runlock import check_writable, claim
from mersemi.train.folds import check_folds
from mersemi.train.params import VARIANTS, config_folds, job_params, train_seeds

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


def per_shard(folder, suffix=""):
    """`folder`/shard-{shard}<suffix>: a per-shard path, named as mersemi.clips names shard
    files (SHARD_STEM keeps `{shard}` as the wildcard)."""
    return folder / f"{SHARD_STEM}{suffix}"


MANIFEST = RESULTS / "manifest.csv"
SPLITS = RESULTS / "splits.csv"  # the manifest without labels (pretraining)
CHECKS = RESULTS / "checks"


def fail(message, code=2):
    """Stop loading with one line on the terminal (no traceback) and the CLI's exit code."""
    print(f"mersemi: error: {one_line(message)}", file=sys.stderr)
    sys.exit(code)


def fail_on_file_system(e):
    """A full, read-only or forbidden folder: one line naming it, exit 3 or 4 (as the CLI)."""
    found = file_system_error(e)
    if found is None:
        raise e
    fail(*found)


# Every options section (extraction and training) before anything is read or written.
try:
    check_config(config)
except InputError as e:
    fail(e)


def claim_results():
    """The results folder's lock (mersemi.runlock), taken by the main process before it
    writes there; None in cluster jobs. Taken by another workflow: this load writes nothing
    that workflow reads (a dry run plans on a staged inventory) and a run is refused at its
    start (onstart below)."""
    if not workflow.is_main_process:
        return None
    try:
        lock = claim(RESULTS)
        if lock.held:
            check_writable(RESULTS)
    except OSError as e:
        fail_on_file_system(e)
    if not lock.held:
        print(
            f"mersemi: note: {lock.refusal()}; this load writes nothing there, a dry run "
            "plans on a staged copy of the inventory",
            file=sys.stderr,
        )
    return lock


RESULTS_LOCK = claim_results()
# Where a load beside a running workflow writes the inventory files that changed (else None).
STAGE_DIR = None
if RESULTS_LOCK is not None and not RESULTS_LOCK.held:
    STAGE_DIR = Path(tempfile.mkdtemp(prefix="mersemi-staged-inventory-"))
    atexit.register(shutil.rmtree, STAGE_DIR, True)


onstart:
    if RESULTS_LOCK is not None and not RESULTS_LOCK.held:
        fail(RESULTS_LOCK.refusal(), 4)


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
            INVENTORY_DIR,
            folders,
            config["shards"],
            DATA["transcript_csv"],
            columns,
            stage_dir=STAGE_DIR,
        )
    except InputError as e:
        fail(e)
    except OSError as e:  # a read-only or full results folder: one line, no traceback
        fail_on_file_system(e)


for _name in ("mersemi.inventory", "mersemi.clips"):
    logging.getLogger(_name).setLevel(logging.INFO)
    logging.getLogger(_name).addHandler(logging.StreamHandler())
INVENTORY = load_inventory()
SHARDS = INVENTORY.shards
STAGED = (
    set()
    if STAGE_DIR is None
    else {
        p.relative_to(STAGE_DIR).as_posix() for p in STAGE_DIR.rglob("*") if p.is_file()
    }
)


def inventory_file(name):
    """An inventory file as the rules read it: the staged copy where this load staged one."""
    return (STAGE_DIR if name in STAGED else INVENTORY_DIR) / name


def inventory_shard(folder=""):
    """Input function: the job's shard file of the inventory (`folder` "transcripts/": its
    provided transcripts)."""
    return lambda wc: inventory_file(f"{folder}{SHARD_STEM.format(shard=wc.shard)}.csv")


CLIPS = inventory_file("clips.csv")
SHARD_CSV = inventory_shard()
TRANSCRIPTS_CSV = inventory_shard("transcripts/")


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
TRAIN_SEEDS = train_seeds(TRAIN)


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


def chain_dir(seed):
    """One training chain per seed: the first seed's under T (so a one-seed config keeps its
    paths), each other's under T/seed<N>."""
    return T if seed == TRAIN_SEEDS[0] else T / f"seed{seed}"


# The train rules' `{seed}` wildcard is what a chain's folder adds to T (nothing for the
# first seed), constrained to the configured seeds: a group, never an empty regex, which
# Snakemake would take for no constraint.
SEED_SUFFIX = {str(chain_dir(s)).removeprefix(str(T)): s for s in TRAIN_SEEDS}
SEED_WILDCARD = "(?:" + "|".join(map(re.escape, SEED_SUFFIX)) + ")"
# `seed=SEED` in a rule: the path pattern of the job's own chain.
SEED = "{seed}"


def seed_of(wildcards):
    """The seed of a train job, from its `{seed}` wildcard."""
    return SEED_SUFFIX[wildcards.seed]


def run_path(*parts, seed=None):
    """A training output, `parts` under the chain of `seed`: an int, None for the first seed
    (whose chain the submission and the report read) or SEED (the rule's wildcard); e.g.
    run_path("full", "step2", "vote", "metrics.json")."""
    if seed == SEED:
        return Path(f"{T}{SEED}", *parts)
    return chain_dir(TRAIN_SEEDS[0] if seed is None else seed).joinpath(*parts)


FEATURE_FILES = {m: FEATURES / f"{m}.h5" for m in ("acoustic", "visual", "text")}
TRAIN_CODE = code_digest("mersemi.train.cli")
# w/o pseudo labels: step 2 of the full method's step-1 models, same schedule, no pseudo labels.
STEP1_OF = {"no_pseudo": "full"}


def train_params(job, **kw):
    """A train job's `--params` JSON (train.params.job_params: the one merge of the config's
    sections, the fine-tuning step, a variant's overrides)."""
    return as_json(job_params(TRAIN, job, **kw))


def pretrain_of(variant, seed):
    nee = "no_nee" if variant == "no_nee" else "nee"
    return run_path("pretrain", nee, "model.pt", seed=seed)


def finetune_inputs(step):
    def inputs(wc):
        files = {**FEATURE_FILES, "manifest": MANIFEST}
        if VARIANTS[wc.variant].get("pretrained", True):
            files["pretrained"] = pretrain_of(wc.variant, seed_of(wc))
        if step == 2:
            step1 = STEP1_OF.get(wc.variant, wc.variant)
            files["init"] = run_path(step1, "step1", "model.pt", seed=seed_of(wc))
            if wc.variant != "no_pseudo":
                files["pseudo"] = run_path(
                    wc.variant, "pseudo", "labels.csv", seed=seed_of(wc)
                )
        return files

    return inputs


def finetune_flags(wc, input):
    return " ".join(
        f"--{key} {shell_quote(input[key])}"
        for key in ("pretrained", "init", "pseudo")
        if key in input.keys()
    )


VOTED = ("step2", "vote", "metrics.json")
# Table 1: label -> each chain's metrics JSON, in the paper's row order, with the linear
# probe after the MER2024 baseline (does the deep model earn its cost?).
TABLE1 = {
    "MER2024 baseline": ("baseline", "metrics.json"),
    "Linear probe (logistic regression)": ("probe", "metrics.json"),
    "MR-CCL (full)": ("full", *VOTED),
    "w/o contrastive pretraining": ("no_pretrain", *VOTED),
    "w/o NEE": ("no_nee", *VOTED),
    "w/o pseudo labels": ("no_pseudo", *VOTED),
    "w/o oversampling": ("no_oversample", *VOTED),
}


def table1_rows(seeds):
    """Table 1's rows over `seeds`: label -> one metrics JSON per seed."""
    return {
        label: [run_path(*parts, seed=s) for s in seeds]
        for label, parts in TABLE1.items()
    }


# ---- report (report.smk)

REPORT_STAGES = {
    "MER2024 baseline": run_path("baseline", "metrics.json"),
    "MR-CCL step 1 (voted)": run_path("full", "step1", "vote", "metrics.json"),
    "MR-CCL step 2 (voted)": run_path("full", *VOTED),
}
# Training-fold class distributions (after oversampling and pseudo labels).
REPORT_FOLDS = {
    "step 1 training folds": run_path("full", "step1", "metrics.json"),
    "step 2 training folds": run_path("full", "step2", "metrics.json"),
}
