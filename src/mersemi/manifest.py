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

from .atomic import write_csv_atomic
from .classes import CLASSES
from .errors import InputError

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


def read_csv_table(path: str | os.PathLike, required: list[str], what: str) -> pd.DataFrame:
    """Read a user CSV as strings; errors name the file and the missing columns."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{what} {path}: file not found") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"{what} {path}: cannot read as UTF-8 CSV ({e})") from None
    except OSError as e:
        raise InputError(f"{what} {path}: cannot read ({e.strerror})") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(
            f"{what} {path}: missing column(s) {missing}; found {list(df.columns)} "
            "(column names are set under data.columns in the config)"
        )
    return df


def _line(i: int) -> int:
    """File line of data row i (0-based), counting the header as line 1."""
    return i + 2


def _unique_names(df: pd.DataFrame, col: str, path: Path, what: str) -> list[str]:
    names = [_nfc(n) for n in df[col]]
    first: dict[str, int] = {}
    for i, n in enumerate(names):
        if not n:
            raise InputError(f"{what} {path}, line {_line(i)}: empty {col!r}")
        if n in first:
            raise InputError(
                f"{what} {path}, line {_line(i)}: duplicate name {n!r} "
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
    names = _unique_names(df, cols.name, path, what)
    labels: dict[str, str] = {}
    for i, (name, raw) in enumerate(zip(names, df[cols.label], strict=True)):
        label = raw.strip().lower()
        if label not in CLASSES:
            raise InputError(
                f"{what} {path}, line {_line(i)}: label {raw!r} of {name!r} is not one of "
                f"{', '.join(CLASSES)}"
            )
        labels[name] = label
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
    """Validate the MER2024-style inputs and return the manifest (nothing is written).

    Splits: labeled videos are `train`; a clip is `test` if it lies in `test_dir` or is named in
    the test-label CSV (MER2024 hid its test clips inside the unlabeled folder); the remaining
    unlabeled videos are `unlabeled`.
    """
    if n_shards < 1:
        raise InputError(f"shards must be at least 1, got {n_shards}")
    label_csv, unlabeled_dir = Path(label_csv), Path(unlabeled_dir)
    labeled = list_videos(labeled_dir, "labeled video folder")
    unlabeled = list_videos(unlabeled_dir, "unlabeled video folder")
    tests = list_videos(test_dir, "test video folder") if test_dir else {}

    seen: dict[str, Path] = {}
    for group in (labeled, unlabeled, tests):
        for name, path in group.items():
            if name in seen:
                raise InputError(f"duplicate clip name {name!r}: {seen[name]} and {path}")
            seen[name] = path

    labels = _read_labels(label_csv, columns, "label CSV")
    for i, name in enumerate(labels):
        if name not in labeled:
            where = " (it is in an unlabeled or test folder)" if name in seen else ""
            raise InputError(
                f"label CSV {label_csv}, line {_line(i)}: no video named {name!r} in "
                f"labeled video folder {labeled_dir}{where}"
            )
    for name, path in labeled.items():
        if name not in labels:
            raise InputError(f"labeled video {path} has no row in label CSV {label_csv}")

    test_labels: dict[str, str] = {}
    if test_label_csv:
        test_label_csv = Path(test_label_csv)
        test_labels = _read_labels(test_label_csv, columns, "test-label CSV")
        for i, name in enumerate(test_labels):
            if name not in unlabeled and name not in tests:
                raise InputError(
                    f"test-label CSV {test_label_csv}, line {_line(i)}: no video named {name!r} "
                    "in the unlabeled or test video folder"
                )

    if transcript_csv:
        transcript_csv = Path(transcript_csv)
        df = read_csv_table(transcript_csv, [columns.name, columns.text], "transcript CSV")
        for i, name in enumerate(_unique_names(df, columns.name, transcript_csv, "transcript CSV")):
            if name not in seen:
                raise InputError(
                    f"transcript CSV {transcript_csv}, line {_line(i)}: no video named {name!r}"
                )

    rows = []
    for name, path in labeled.items():
        rows.append((name, str(path), "train", labels[name]))
    for name, path in unlabeled.items():
        split = "test" if name in test_labels else "unlabeled"
        rows.append((name, str(path), split, test_labels.get(name, "")))
    for name, path in tests.items():
        rows.append((name, str(path), "test", test_labels.get(name, "")))
    df = pd.DataFrame(rows, columns=["name", "path", "split", "label"])
    df["shard"] = [shard_of(n, n_shards) for n in df["name"]]
    return df.sort_values("name", kind="stable").reset_index(drop=True)


def write_manifest(
    df: pd.DataFrame, manifest_csv: str | os.PathLike, shard_dir: str | os.PathLike, n_shards: int
) -> None:
    """Write the manifest and every shard file (empty shards too: the workflow expects all)."""
    for shard in range(n_shards):
        write_csv_atomic(df[df["shard"] == shard], shard_path(shard_dir, shard))
    write_csv_atomic(df, manifest_csv)
    counts = df["split"].value_counts().to_dict()
    log.info(
        "manifest %s: %d clips (%s) in %d shards",
        manifest_csv,
        len(df),
        ", ".join(f"{s} {counts.get(s, 0)}" for s in SPLITS),
        n_shards,
    )


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest or shard file written by `write_manifest` (labels stay '' when absent)."""
    df = read_csv_table(path, MANIFEST_COLUMNS, "manifest")
    df["shard"] = df["shard"].astype(int)
    return df
