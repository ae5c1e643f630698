"""The manifest: one row per video (name, path, split, label, shard) and one file per shard.

Everything is validated before anything is written, so bad input leaves no partial output.
"""

import hashlib
import logging
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .classes import CLASSES
from .errors import InputError, shorten
from .tables import read_csv_table

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".mpg", ".mpeg", ".m4v", ".wmv", ".ts"}
)
MANIFEST_COLUMNS = ["name", "path", "split", "label", "shard"]
SPLITS = ("train", "unlabeled", "test")


@dataclass(frozen=True)
class Columns:
    """Column names of the input CSVs (MER2024 defaults)."""

    name: str = "name"
    label: str = "discrete"
    text: str = "chinese"


def shard_of(name: str, n_shards: int) -> int:
    """Stable shard of a clip: a hash of its name alone, so adding clips never moves others."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


def shard_path(shard_dir: str | os.PathLike, shard: int) -> Path:
    return Path(shard_dir) / f"shard-{shard:04d}.csv"


def _nfc(s: str) -> str:
    # File systems differ in Unicode normalisation (macOS stores NFD); compare names as NFC.
    return unicodedata.normalize("NFC", s.strip())


def _line(i: int) -> int:
    """File line of data row i (0-based), counting the header as line 1."""
    return i + 2


def unique_names(df: pd.DataFrame, col: str, path: Path, what: str) -> list[str]:
    names = [_nfc(n) for n in df[col]]
    first: dict[str, int] = {}
    for i, n in enumerate(names):
        if not n:
            raise InputError(f"{what} {path}, line {_line(i)}: empty {col!r}")
        if n in first:
            raise InputError(
                f"{what} {path}, line {_line(i)}: duplicate name {shorten(n)} "
                f"(first on line {_line(first[n])})"
            )
        first[n] = i
    return names


def list_videos(folder: str | os.PathLike, what: str) -> dict[str, Path]:
    """Map clip name (file stem) -> path for every video in a folder (not recursive).

    Dotfiles are ignored; any other file without a video extension is an error, since a stray
    `.txt` or `.wav` in a video folder usually means the wrong folder was configured.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{what} {folder}: not a directory")
    videos: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.is_dir():
            continue
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                f"{what} {folder}: file name {os.fsencode(entry.name)!r} is not valid UTF-8 "
                "(clip names go into CSV and HDF5 files); rename it"
            ) from None
        if entry.suffix.lower() not in VIDEO_EXTENSIONS:
            raise InputError(
                f"{what} {folder}: {entry.name!r} is not a video "
                f"(extension {entry.suffix or '(none)'!r}; expected one of "
                f"{', '.join(sorted(VIDEO_EXTENSIONS))})"
            )
        name = _nfc(entry.stem)
        if name in videos:
            raise InputError(
                f"{what} {folder}: duplicate name {name!r} ({videos[name].name} and {entry.name})"
            )
        videos[name] = entry
    return videos


def _read_labels(path: Path, cols: Columns, what: str) -> dict[str, str]:
    df = read_csv_table(path, [cols.name, cols.label], what)
    names = unique_names(df, cols.name, path, what)
    labels: dict[str, str] = {}
    for i, (name, raw) in enumerate(zip(names, df[cols.label], strict=True)):
        label = raw.strip().lower()
        if label not in CLASSES:
            raise InputError(
                f"{what} {path}, line {_line(i)}: label {shorten(raw)} of {shorten(name)} is not "
                f"one of {', '.join(CLASSES)}"
            )
        labels[name] = label
    return labels


def label_clips(
    clips: pd.DataFrame,
    label_csv: str | os.PathLike | None,
    test_label_csv: str | os.PathLike | None = None,
    columns: Columns = Columns(),
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
        test_labels = _read_labels(test_label_csv, columns, "test-label CSV")
        for i, name in enumerate(test_labels):
            if source.get(name) not in ("unlabeled", "test"):
                raise InputError(
                    f"test-label CSV {test_label_csv}, line {_line(i)}: no video named "
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
    labels = _read_labels(label_csv, columns, "label CSV")
    for i, name in enumerate(labels):
        if source.get(name) != "labeled":
            where = " (it is in an unlabeled or test folder)" if name in source else ""
            raise InputError(
                f"label CSV {label_csv}, line {_line(i)}: no video named {shorten(name)} in "
                f"the labeled video folder{where}"
            )
    for r in clips[clips["source"] == "labeled"].itertuples():
        if r.name not in labels:
            raise InputError(f"labeled video {r.path} has no row in label CSV {label_csv}")
    return labels


def build_manifest(
    *,
    labeled_dir: str | os.PathLike,
    label_csv: str | os.PathLike,
    unlabeled_dir: str | os.PathLike,
    n_shards: int,
    test_dir: str | os.PathLike | None = None,
    test_label_csv: str | os.PathLike | None = None,
    transcript_csv: str | os.PathLike | None = None,
    columns: Columns = Columns(),
) -> pd.DataFrame:
    """Validate MER2024-style inputs straight from their folders and return the manifest,
    with clips hashed into `n_shards` shards (nothing is written). The workflow goes through
    `mersemi.inventory` instead, which keeps shards stable as the folders change."""
    from .inventory import read_transcripts, scan

    if n_shards < 1:
        raise InputError(f"shards must be at least 1, got {n_shards}")
    clips = scan({"labeled": labeled_dir, "unlabeled": unlabeled_dir, "test": test_dir})
    clips["shard"] = [shard_of(n, n_shards) for n in clips["name"]]
    if transcript_csv:
        read_transcripts(transcript_csv, clips, columns)
    return label_clips(clips, label_csv, test_label_csv, columns)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest written by `mersemi manifest` (labels stay '' when absent)."""
    df = read_csv_table(path, MANIFEST_COLUMNS, "manifest")
    df["shard"] = df["shard"].astype(int)
    return df
