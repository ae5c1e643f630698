"""The manifest: one row per video (name, path, split, label, shard), for training.

Everything is validated before anything is written, so bad input leaves no partial output.
"""

import logging
import os
from pathlib import Path

import pandas as pd

from .classes import CLASSES
from .clips import DEFAULT_COLUMNS, Columns, unique_names
from .errors import InputError, shorten
from .tables import csv_line, read_csv_table

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["name", "path", "split", "label", "shard"]
SPLITS = ("train", "unlabeled", "test")


def _read_labels(path: Path, cols: Columns, what: str) -> tuple[dict[str, str], dict[str, int]]:
    """name -> label, and name -> the file line of its row."""
    df = read_csv_table(path, [cols.name, cols.label], what)
    names = unique_names(df, cols.name, path, what)
    labels: dict[str, str] = {}
    lines: dict[str, int] = {}
    for i, (name, raw) in enumerate(zip(names, df[cols.label], strict=True)):
        label = raw.strip().lower()
        if label not in CLASSES:
            raise InputError(
                f"{what} {path}, line {csv_line(df, i)}: label {shorten(raw)} of "
                f"{shorten(name)} is not one of {', '.join(CLASSES)}"
            )
        labels[name] = label
        lines[name] = csv_line(df, i)
    return labels, lines


def label_clips(
    clips: pd.DataFrame,
    label_csv: str | os.PathLike | None,
    test_label_csv: str | os.PathLike | None = None,
    columns: Columns = DEFAULT_COLUMNS,
) -> pd.DataFrame:
    """The manifest: the inventory's clips (name, path, source, shard) with split and label.

    Splits: labeled videos are `train`; a clip is `test` if it lies in the test folder or is
    named in the test-label CSV (MER2024 hid its test clips inside the unlabeled folder); the
    remaining unlabeled videos are `unlabeled`. Without `label_csv` every label is left empty:
    the splits file that pretraining reads, so that a label fix does not rerun pretraining.
    """
    source = dict(zip(clips["name"], clips["source"], strict=True))
    labels = {} if label_csv is None else _check_labels(clips, source, Path(label_csv), columns)

    test_labels: dict[str, str] = {}
    if test_label_csv:
        test_label_csv = Path(test_label_csv)
        test_labels, lines = _read_labels(test_label_csv, columns, "test-label CSV")
        for name in test_labels:
            if source.get(name) not in ("unlabeled", "test"):
                raise InputError(
                    f"test-label CSV {test_label_csv}, line {lines[name]}: no video named "
                    f"{shorten(name)} in the unlabeled or test video folder"
                )

    df = clips[["name", "path", "shard"]].copy()
    df["split"] = [
        "train" if s == "labeled" else "test" if s == "test" or n in test_labels else "unlabeled"
        for n, s in zip(clips["name"], clips["source"], strict=True)
    ]
    df["label"] = (
        [labels.get(n) or test_labels.get(n, "") for n in clips["name"]]
        if label_csv is not None
        else ""
    )
    df = df[MANIFEST_COLUMNS].sort_values("name", kind="stable")
    return df.reset_index(drop=True)


def _check_labels(
    clips: pd.DataFrame, source: dict[str, str], label_csv: Path, columns: Columns
) -> dict[str, str]:
    """The label CSV's labels, which must name exactly the labeled folder's videos."""
    labels, lines = _read_labels(label_csv, columns, "label CSV")
    for name in labels:
        if source.get(name) != "labeled":
            where = " (it is in an unlabeled or test folder)" if name in source else ""
            raise InputError(
                f"label CSV {label_csv}, line {lines[name]}: no video named {shorten(name)} in "
                f"the labeled video folder{where}"
            )
    for r in clips[clips["source"] == "labeled"].itertuples():
        if r.name not in labels:
            raise InputError(f"labeled video {r.path} has no row in label CSV {label_csv}")
    return labels


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest written by `mersemi manifest` (labels stay '' when absent)."""
    df = read_csv_table(path, MANIFEST_COLUMNS, "manifest")
    df["shard"] = df["shard"].astype(int)
    return df
