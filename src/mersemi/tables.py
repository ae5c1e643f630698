"""Reading the user's CSV files: strings only, errors that name the file and the columns."""

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, shorten


class _RowLines:
    """The first file line of each data row, kept in `df.attrs` by `read_csv_table`. pandas
    deep-copies attrs into every frame and column it derives, and compares them in `concat`: this
    one is shared, not copied, and compares by value."""

    def __init__(self, starts: np.ndarray):
        self.starts = starts
        self.starts.flags.writeable = False

    def __deepcopy__(self, memo) -> "_RowLines":
        return self

    def __eq__(self, other) -> bool:
        return isinstance(other, _RowLines) and np.array_equal(self.starts, other.starts)

    __hash__ = None


_LINES = "mersemi_csv_lines"

# pandas' default `na_values` (the `read_csv` documentation: "By default the following values
# are interpreted as NaN"); tests/test_tables.py checks that `read_csv` reads each one as NaN.
NA_STRINGS = frozenset(
    {
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
        "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)  # fmt: skip


def missing_text(cell: str) -> bool:
    """Whether a text cell holds no text: empty, or a string that pandas reads as missing
    (`NaN`, `nan`, `None`, `N/A`, ...: a missing value written out as text), whitespace aside."""
    return cell.strip() in NA_STRINGS


def csv_line(table: pd.DataFrame, i: int) -> int:
    """File line (1-based) where data row i (0-based position in the table `read_csv_table`
    returned) starts, counting the lines of quoted cells that span several, blank lines and the
    header. A table not read by `read_csv_table` counts one line per row after the header."""
    lines = table.attrs.get(_LINES)
    return int(lines.starts[i]) if isinstance(lines, _RowLines) else i + 2


def _header_and_row_lines(f) -> tuple[list[str], np.ndarray | None]:
    """The header and the first file line of each data row, as pandas reads the rows: a line of
    only spaces and tabs is skipped (`skip_blank_lines`), a quoted empty cell is a row. None
    for the lines when the csv module cannot read the file as pandas does."""
    raw: list[str] = []

    def physical_lines():
        for line in f:
            raw.append(line)
            yield line

    reader = csv.reader(physical_lines())
    header: list[str] = []
    starts: list[int] = []
    # pandas reads cells of any length; the csv module stops at field_size_limit (128 KiB)
    limit = csv.field_size_limit(max(csv.field_size_limit(), os.fstat(f.fileno()).st_size))
    try:
        for row in reader:
            first = reader.line_num - len(raw) + 1
            if not header:
                if "".join(raw).strip(" \t\r\n"):
                    header = row
            elif len(row) > 1 or "".join(raw).strip(" \t\r\n"):
                starts.append(first)
            raw.clear()
    except csv.Error:
        return header, None
    finally:
        csv.field_size_limit(limit)
    return header, np.asarray(starts, dtype=np.int64)


def read_csv_table(path: str | os.PathLike, required: list[str], what: str) -> pd.DataFrame:
    """Read a user CSV as strings; errors name the file and the missing columns."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            header, lines = _header_and_row_lines(f)
        header = [c.strip() for c in header]
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
    if lines is not None and len(lines) == len(df):
        df.attrs[_LINES] = _RowLines(lines)
    return df
