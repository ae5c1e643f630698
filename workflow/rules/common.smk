# Shared paths and helpers. Nothing here reads the manifest: cluster jobs re-parse this file.
import hashlib
import json
from pathlib import Path

import mersemi

RESULTS = Path(config["results"])
DATA = config["data"]
SHARDS = [f"{i:04d}" for i in range(config["shards"])]
MANIFEST = RESULTS / "manifest.csv"
SHARD_CSV = RESULTS / "shards" / "shard-{shard}.csv"
SRC = Path(mersemi.__file__).parent


def code_digest(*modules):
    """Digest of the mersemi source files a rule runs, passed as a param so that editing a
    stage's module reruns that stage (Snakemake's code trigger does not see imports)."""
    h = hashlib.sha256()
    for m in sorted(modules):
        h.update(m.encode())
        h.update((SRC / m).read_bytes())
    return h.hexdigest()[:16]


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
