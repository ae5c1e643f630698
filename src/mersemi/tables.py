"""Reading the user's CSV files: strings only, errors that name the file and the columns."""

import csv
import os
from pathlib import Path

import pandas as pd

from .errors import InputError, shorten


def csv_line(i: int) -> int:
    """File line of data row i (0-based), counting the header as line 1."""
    return i + 2


def read_csv_table(path: str | os.PathLike, required: list[str], what: str) -> pd.DataFrame:
    """Read a user CSV as strings; errors name the file and the missing columns."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = [c.strip() for c in next(csv.reader(f), [])]
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{what} {path}: file not found") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"{what} {path}: cannot read as UTF-8 CSV ({e})") from None
    except OSError as e:
        raise InputError(f"{what} {path}: cannot read ({e.strerror})") from None
    # pandas renames a repeated column (`discrete.1`): two columns of one name are ambiguous
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        listed = ", ".join(shorten(c) for c in repeated)
        raise InputError(f"{what} {path}: column(s) {listed} appear twice")
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        found = ", ".join(shorten(c) for c in df.columns)
        raise InputError(
            f"{what} {path}: missing column(s) {missing}; found {found} "
            "(column names are set under data.columns in the config)"
        )
    return df
