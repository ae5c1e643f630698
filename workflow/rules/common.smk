# Shared paths and helpers. Nothing here reads the manifest: cluster jobs re-parse this file.
import json
from pathlib import Path

from mersemi.codedigest import code_digest

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
    return " ".join(
        f"{flag} {label + '=' + str(path)!r}" for label, path in rows.items()
    )
