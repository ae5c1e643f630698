# Shared paths and helpers of the rule files. The load (config check, results lock, demo
# inputs, inventory, label check) is one call of the package: mersemi.workflow.load_run.
import shlex
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

from mersemi.workflow import SHARD_STEM, as_json, code_digest, load_run, stage_section

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

# Options checked, results folder claimed, inventory updated (cluster jobs: read), labels
# checked; a user error stops here with one line and the CLI's exit code.
RUN = load_run(config, workflow.is_main_process)


onstart:
    # A results folder another workflow holds: the run is refused (exit 4), a dry run plans.
    RUN.check_start()


RESULTS = RUN.results
# Logs and rule benchmarks of this run, beside its results (one folder per config).
LOGS = RESULTS / "logs"
BENCH = RESULTS / "benchmarks"
DATA = config["data"]
SHARDS = RUN.shards


def per_shard(folder, suffix=""):
    """`folder`/shard-{shard}<suffix>: a per-shard path, named as mersemi.clips names shard
    files (SHARD_STEM keeps `{shard}` as the wildcard)."""
    return folder / f"{SHARD_STEM}{suffix}"


MANIFEST = RESULTS / "manifest.csv"
SPLITS = RESULTS / "splits.csv"  # the manifest without labels (pretraining)
CHECKS = RESULTS / "checks"


def inventory_shard(folder=""):
    """Input function: the job's shard file of the inventory (`folder` "transcripts/": its
    provided transcripts), the staged copy where this load staged one."""
    return lambda wc: RUN.inventory_file(
        f"{folder}{SHARD_STEM.format(shard=wc.shard)}.csv"
    )


CLIPS = RUN.inventory_file("clips.csv")
SHARD_CSV = inventory_shard()
TRANSCRIPTS_CSV = inventory_shard("transcripts/")


def shell_quote(value):
    """One shell word, for values built in Python (`{x:q}` quotes those Snakemake formats)."""
    return shlex.quote(str(value))


def labelled(flag, rows):
    """`--flag 'LABEL=PATH'` for each row, quoted for the shell (report.smk)."""
    return " ".join(
        f"{flag} {shell_quote(f'{label}={path}')}" for label, path in rows.items()
    )


EXTRACT = config["extract"]
MODELS = config["models"]
TINY_MODELS = Path(MODELS["tiny_dir"]) / "models.json"
FEATURES = RESULTS / "features"
# The feature sets (mersemi.featuresets.FeatureSets): paths, `{set}` wildcards, params.
FEATURE_SETS = RUN.feature_sets
# Model paths per stage (params keys), tracked as inputs so a missing one fails early.
MODEL_KEYS = ("checkpoint", "model_config", "model_dir")


def model_inputs(section):
    """The files a model is read from (`section`: a stage's name, or a feature set's params):
    the tiny-model index when the workflow writes the tiny models itself, else the configured
    paths."""
    if MODELS["tiny"]:
        return [TINY_MODELS]
    if isinstance(section, str):
        section = EXTRACT.get(section) or {}
    return [section[k] for k in MODEL_KEYS if section.get(k)]


def stage_params(stage, **extra):
    """A stage's `--params` JSON: its section, plus `extract.recipe` for the stages it
    changes (faces, visual, acoustic, text)."""
    return as_json(stage_section(EXTRACT, stage) | extra)
