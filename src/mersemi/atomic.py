"""Write-to-temp-then-rename, so a killed job never leaves a readable half file."""

import contextlib
import glob
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

NAME_MAX = 255  # bytes in one path component on Linux and macOS file systems


def fit_name(stem: str, suffix: str) -> str:
    """`stem + suffix`, or, where that passes NAME_MAX bytes, the stem cut short and a hash of
    the whole of it (so distinct names stay distinct); callers record the name they used."""
    name = f"{stem}{suffix}"
    if len(os.fsencode(name)) <= NAME_MAX:
        return name
    digest = "~" + hashlib.blake2b(os.fsencode(stem), digest_size=8).hexdigest()
    room = NAME_MAX - len(os.fsencode(digest + suffix))
    cut = os.fsencode(stem)[:room].decode("utf-8", "ignore")  # whole characters only
    return f"{cut}{digest}{suffix}"


def _temp_prefix(final: Path) -> str:
    # A clip name near NAME_MAX leaves no room for the temp decoration: hash it instead.
    prefix = f".{final.name}"
    if len(os.fsencode(f"{prefix}.{os.getpid()}.tmp")) > NAME_MAX:
        prefix = ".~" + hashlib.blake2b(os.fsencode(final.name), digest_size=12).hexdigest()
    return prefix


def temp_path(final: str | os.PathLike) -> Path:
    """A hidden temp name beside `final` (same directory, so the rename is atomic).

    Temp files of the same final name left by a killed earlier writer are removed here: one
    job alone writes a given output, so any such file is stale."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = _temp_prefix(final)
    tmp = final.with_name(f"{prefix}.{os.getpid()}.tmp")
    for stale in final.parent.glob(f"{glob.escape(prefix)}.*.tmp"):
        if stale != tmp:
            stale.unlink(missing_ok=True)
    return tmp


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds.

    The temp name sits in the same directory (so the rename is atomic on POSIX) and does not
    end with the final suffix, so globbing for `*.h5` or `*.csv` never picks up a half file.
    """
    tmp = temp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as e:
        # a failed write() names no file: name the output, for the one-line error
        if e.filename is None:
            e.filename = str(final)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_csv_atomic(df, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame as UTF-8 CSV atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, encoding="utf-8")
