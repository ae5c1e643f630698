"""`build_manifest`: the manifest straight from MER2024-style folders, for tests.

The workflow goes through `mersemi.inventory` (stable, append-only shards) and
`mersemi.manifest.label_clips`; tests of the validation want the folders in, the manifest out.
"""

import os

import pandas as pd

from mersemi.clips import DEFAULT_COLUMNS, Columns, shard_of
from mersemi.errors import InputError
from mersemi.inventory import read_transcripts, scan
from mersemi.manifest import label_clips


def build_manifest(
    *,
    labeled_dir: str | os.PathLike,
    label_csv: str | os.PathLike,
    unlabeled_dir: str | os.PathLike,
    n_shards: int,
    test_dir: str | os.PathLike | None = None,
    test_label_csv: str | os.PathLike | None = None,
    transcript_csv: str | os.PathLike | None = None,
    columns: Columns = DEFAULT_COLUMNS,
) -> pd.DataFrame:
    """Validate the inputs and return the manifest, with clips hashed into `n_shards` shards
    (nothing is written)."""
    if n_shards < 1:
        raise InputError(f"shards must be at least 1, got {n_shards}")
    clips = scan({"labeled": labeled_dir, "unlabeled": unlabeled_dir, "test": test_dir})
    clips["shard"] = [shard_of(n, n_shards) for n in clips["name"]]
    if transcript_csv:
        read_transcripts(transcript_csv, clips, columns)
    return label_clips(clips, label_csv, test_label_csv, columns)
