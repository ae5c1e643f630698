"""Clip identity: which files are videos, what a clip is called, and which shard holds it.

The one place that says so, for the inventory, the manifest, the feature store, the synthetic
sets and the workflow's per-shard paths (`SHARD_STEM`).
"""

import hashlib
import logging
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import InputError, shorten
from .tables import csv_line

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".mpg", ".mpeg", ".m4v", ".wmv", ".ts"}
)
# The stem of every per-shard file (inventory lists, transcripts, feature shards); the
# workflow keeps `{shard}` as its wildcard.
SHARD_STEM = "shard-{shard}"


@dataclass(frozen=True)
class Columns:
    """Column names of the input CSVs (MER2024 defaults)."""

    name: str = "name"
    label: str = "discrete"
    text: str = "chinese"


DEFAULT_COLUMNS = Columns()


def shard_of(name: str, n_shards: int) -> int:
    """Stable shard of a clip: a hash of its name alone, so adding clips never moves others."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


def shard_id(shard: int) -> str:
    """A shard number as it appears in file names and `owners` (7 -> `0007`)."""
    return f"{shard:04d}"


def shard_file(shard: int, suffix: str) -> str:
    """The file name of a shard's output (`shard_file(7, ".csv")` -> `shard-0007.csv`)."""
    return SHARD_STEM.format(shard=shard_id(shard)) + suffix


def normalize_name(s: str) -> str:
    # File systems differ in Unicode normalisation (macOS stores NFD); compare names as NFC.
    return unicodedata.normalize("NFC", s.strip())


def unique_names(df: pd.DataFrame, col: str, path: Path, what: str) -> list[str]:
    """The normalised names of a CSV's `col`; an empty or repeated one is an error."""
    names = [normalize_name(n) for n in df[col]]
    first: dict[str, int] = {}
    for i, n in enumerate(names):
        if not n:
            raise InputError(f"{what} {path}, line {csv_line(df, i)}: empty {col!r}")
        if n in first:
            raise InputError(
                f"{what} {path}, line {csv_line(df, i)}: duplicate name {shorten(n)} "
                f"(first on line {csv_line(df, first[n])})"
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
    special = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.is_dir():
            continue
        if _special(entry):  # a FIFO blocks whoever opens it: never open one
            special.append(entry.name)
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
        name = normalize_name(entry.stem)
        if name in videos:
            raise InputError(
                f"{what} {folder}: duplicate name {name!r} ({videos[name].name} and {entry.name})"
            )
        videos[name] = entry
    if special:
        log.warning(
            "%s %s: skipped %d special file(s) (FIFO, socket or device; not opened): %s",
            what,
            folder,
            len(special),
            ", ".join(special[:5]) + (f" and {len(special) - 5} more" if len(special) > 5 else ""),
        )
    return videos


def _special(entry: Path) -> bool:
    """A FIFO, socket or device (followed through a symlink); a broken link is not special
    (the scan reports it as a file it cannot stat)."""
    try:
        mode = entry.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
