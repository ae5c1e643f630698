"""Write-to-temp-then-rename, so a killed job never leaves a readable half file."""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def temp_path(final: str | os.PathLike) -> Path:
    """A hidden temp name beside `final` (same directory, so the rename is atomic)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}.{os.getpid()}.tmp")


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
    finally:
        tmp.unlink(missing_ok=True)


def write_csv_atomic(df, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame as UTF-8 CSV atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, encoding="utf-8")
