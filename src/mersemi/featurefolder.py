"""MERTools feature folders: `<feature>-UTT/<name>.npy`, one (D,) float32 array per clip, as
MERTools' `MER2024/feature_extraction` scripts write them at `--feature_level UTTERANCE`.

`read_folder` reads one, checked against the clip names the user gives (one dim across the
folder, finite values, every clip present once, no file for a clip not named); `write_folder`
writes one, atomically (a hidden temp folder renamed when complete). The HDF5 side is `store`;
`commands` joins the two (`mersemi features import|export`). Every error is one line naming
the file or clip.

Frame-level folders (`<feature>-FRA/<name>.npy`, (frames, D)) are refused: the feature store
holds one vector per clip.
"""

import glob
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .atomic import NAME_MAX
from .clips import normalize_name, unique_names
from .errors import InputError, shorten
from .progress import progress
from .tables import read_csv_table

log = logging.getLogger(__name__)

UTT, FRA = "-UTT", "-FRA"
SUFFIX = ".npy"
WHAT = "MERTools feature folder"

Missing = Literal["error", "invalid"]
Extra = Literal["error", "drop"]
Invalid = Literal["skip", "zeros"]


@dataclass(frozen=True)
class FolderFeatures:
    """A MERTools folder's rows in the order of the names asked for."""

    feature: str  # the folder name without -UTT
    names: list[str]
    features: np.ndarray  # float32, N x D; zeros where valid is False
    valid: np.ndarray  # bool, N; False: no file (imported with missing="invalid")
    missing: list[str] = field(default_factory=list)  # named clips without a file
    dropped: list[str] = field(default_factory=list)  # files of clips not named (extra="drop")

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])


def feature_name(folder: str | os.PathLike) -> str:
    """`clip-vit-large-patch14-UTT` -> `clip-vit-large-patch14` (a folder without the
    suffix keeps its whole name)."""
    name = _base(folder)
    return name[: -len(UTT)] if name.endswith(UTT) else name


def _base(folder: str | os.PathLike) -> str:
    """The folder's own name as given (`.` and `x/..` resolved, a symlink's name kept)."""
    return os.path.basename(os.path.normpath(os.path.abspath(folder)))


def read_names(path: str | os.PathLike, name_col: str = "name") -> list[str]:
    """The clip names to import: a CSV's `name_col` (the inventory's `clips.csv`, a manifest,
    a shard list, any CSV), or an inventory folder (its `clips.csv`)."""
    path = Path(path)
    if path.is_dir():
        path = path / "clips.csv"
    df = read_csv_table(path, [name_col], "names CSV")
    if df.empty:
        raise InputError(f"names CSV {path}: no rows")
    return unique_names(df, name_col, path, "names CSV")


def list_folder(folder: str | os.PathLike) -> dict[str, Path]:
    """Clip name (normalised file stem) -> `.npy` path. Dotfiles that are not `.npy` are
    ignored (`.DS_Store`, temp files); any other entry is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{WHAT} {folder}: not a directory")
    if _base(folder).endswith(FRA):
        raise InputError(
            f"{WHAT} {folder}: a frame-level folder (-FRA, one (frames, D) array per clip); the "
            "feature store holds one vector per clip, so import the matching -UTT folder"
        )
    files: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") and not entry.name.endswith(SUFFIX):
            continue
        if entry.is_dir():
            raise InputError(
                f"{WHAT} {folder}: holds a folder {entry.name!r}, expected only <name>.npy "
                "files (pass one <feature>-UTT folder, not the folder above it)"
            )
        if not entry.name.endswith(SUFFIX):
            raise InputError(f"{WHAT} {folder}: {entry.name!r} is not a .npy file")
        name = normalize_name(entry.name[: -len(SUFFIX)])
        if not name:
            raise InputError(f"{WHAT} {folder}: {entry.name!r} has an empty clip name")
        if name in files:
            raise InputError(
                f"{WHAT} {folder}: clip {name!r} twice ({files[name].name!r} and {entry.name!r})"
            )
        files[name] = entry
    if not files:
        raise InputError(f"{WHAT} {folder}: no .npy files")
    return files


def _listed(names: Sequence[str], total: int) -> str:
    shown = ", ".join(shorten(n, 60) for n in names[:5])
    return shown + (f" and {total - 5} more" if total > 5 else "")


def load_vector(path: Path) -> np.ndarray:
    """One clip's (D,) feature array, checked: a readable .npy of floats, 1-D, finite."""
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"MERTools feature file {path}: not a readable .npy file ({e})") from None
    if not isinstance(a, np.ndarray):  # an .npz archive
        raise InputError(f"MERTools feature file {path}: not a single .npy array")
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"MERTools feature file {path}: dtype {a.dtype}, expected float32")
    if a.ndim != 1:
        hint = " (a frame-level array? only -UTT vectors are imported)" if a.ndim == 2 else ""
        raise InputError(f"MERTools feature file {path}: shape {a.shape}, expected (D,){hint}")
    bad = ~np.isfinite(a)
    if bad.any():
        kind = "NaN" if np.isnan(a).any() else "inf"
        raise InputError(
            f"MERTools feature file {path}: {int(bad.sum())} non-finite value(s) ({kind}, first "
            f"at index {int(np.argmax(bad))})"
        )
    return a


def read_folder(
    folder: str | os.PathLike,
    names: Sequence[str],
    missing: Missing = "error",
    extra: Extra = "error",
) -> FolderFeatures:
    """Read a MERTools `-UTT` folder as rows in the order of `names`.

    A named clip without a file is an error (missing="invalid": a zero row with valid False,
    what the store calls a clip that could not be processed); a file of a clip not named is an
    error (extra="drop": left out, and logged).
    """
    folder = Path(folder)
    files = list_folder(folder)
    names = [normalize_name(n) for n in names]
    absent = [n for n in names if n not in files]
    wanted = set(names)
    surplus = [n for n in files if n not in wanted]
    if absent and (missing == "error" or len(absent) == len(names)):
        hint = " (--missing invalid imports them as invalid rows)" if missing == "error" else ""
        if len(absent) == len(names):
            hint = " (none of the named clips has a file: the wrong folder or names?)"
        raise InputError(
            f"{WHAT} {folder}: {len(absent)} clip(s) named have no file: "
            f"{_listed([n + SUFFIX for n in absent], len(absent))}{hint}"
        )
    if surplus and extra == "error":
        raise InputError(
            f"{WHAT} {folder}: {len(surplus)} file(s) of clip(s) not in the names: "
            f"{_listed([files[n].name for n in surplus], len(surplus))} "
            "(--extra drop leaves them out)"
        )
    feature = feature_name(folder)
    present = [i for i, n in enumerate(names) if n in files]
    first = files[names[present[0]]]
    dim = len(load_vector(first))
    feats = np.zeros((len(names), dim), dtype=np.float32)
    valid = np.zeros(len(names), dtype=bool)
    wide = 0
    for i in progress(present, desc=f"import {feature}", unit="file"):
        path = files[names[i]]
        a = load_vector(path)
        if len(a) != dim:
            raise InputError(
                f"MERTools feature file {path}: dim {len(a)}, but {first.name} has dim {dim} "
                "(one dim across the folder)"
            )
        wide += a.dtype.itemsize > 4
        feats[i], valid[i] = a, True
    if wide:
        log.warning("%s: %d file(s) hold float64 values, rounded to float32", folder, wide)
    if absent:
        log.warning(
            "%s: %d clip(s) without a file imported as invalid (zero row, valid=False): %s",
            folder,
            len(absent),
            _listed(absent, len(absent)),
        )
    if surplus:
        log.warning(
            "%s: %d file(s) of clips not in the names left out: %s",
            folder,
            len(surplus),
            _listed(surplus, len(surplus)),
        )
    return FolderFeatures(feature, names, feats, valid, absent, surplus)


def _file_name(name: str) -> str:
    bad = not name or name in (".", "..") or "/" in name or "\0" in name or os.sep in name
    if bad or len(os.fsencode(name + SUFFIX)) > NAME_MAX:
        raise InputError(f"clip name {shorten(name)} cannot be a MERTools file name <name>.npy")
    return name + SUFFIX


def write_folder(
    out_dir: str | os.PathLike,
    feature: str,
    names: Sequence[str],
    features: np.ndarray,
    valid: np.ndarray,
    invalid: Invalid = "skip",
    overwrite: bool = False,
) -> Path:
    """Write `out_dir/<feature>-UTT/<name>.npy` (float32 (D,)) and return that folder.

    It is written as a hidden temp folder beside it and renamed when complete, so a failure
    halfway leaves no folder of that name. Rows with valid False have no MERTools equivalent:
    invalid="skip" leaves their files out (logged), "zeros" writes their zero rows.
    An existing folder is an error unless `overwrite`.
    """
    final = Path(out_dir) / f"{feature}{UTT}"
    if "/" in feature or os.sep in feature or not feature or feature.startswith("."):
        raise InputError(f"feature name {shorten(feature)}: not usable as a folder name")
    if final.exists() and not overwrite:
        raise InputError(f"{WHAT} {final}: exists (pass --overwrite to replace it)")
    features = np.asarray(features, dtype=np.float32)
    valid = np.asarray(valid, dtype=bool)
    rows = np.flatnonzero(valid) if invalid == "skip" else np.arange(len(names))
    if not len(rows):
        raise InputError(f"{WHAT} {final}: no valid row to export")
    files = [_file_name(names[i]) for i in rows]
    if invalid == "skip" and len(rows) < len(names):
        skipped = [names[i] for i in np.flatnonzero(~valid)]
        log.warning(
            "%s: %d invalid clip(s) left out (no file; --invalid zeros writes zero rows): %s",
            final,
            len(skipped),
            _listed(skipped, len(skipped)),
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}"
    for stale in final.parent.glob(f"{glob.escape(prefix)}.*.tmp"):  # of a killed export
        _remove(stale)
    tmp = final.with_name(f"{prefix}.{os.getpid()}.tmp")
    old = final.with_name(f"{prefix}.{os.getpid()}.old.tmp")
    try:
        tmp.mkdir()
        for i, fname in zip(progress(rows, desc=f"export {feature}", unit="file"), files,
                            strict=True):  # fmt: skip
            with open(tmp / fname, "wb") as f:
                np.save(f, features[i])
        _swap_in(tmp, final, old)
    except OSError as e:
        if e.filename is None:
            e.filename = str(final)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _swap_in(tmp: Path, final: Path, old: Path) -> None:
    """Rename `tmp` onto `final`; an existing `final` is moved aside first and removed only
    once the new folder is in place (put back if the rename fails)."""
    if not final.exists():
        os.replace(tmp, final)
        return
    os.replace(final, old)
    try:
        os.replace(tmp, final)
    except OSError:
        os.replace(old, final)
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
