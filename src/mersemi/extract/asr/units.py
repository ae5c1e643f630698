"""WeNet's units.txt: unit ids to text."""

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ...errors import InputError
from . import STAGE


def read_units(path: str | os.PathLike) -> list[str]:
    """units.txt: one `<unit> <id>` per line, ids 0..N-1 in any order."""
    path = Path(path)
    table: dict[int, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise InputError(
                f"{STAGE}: {path}, line {lineno}: expected '<unit> <id>', got {line!r}"
            )
        table[int(parts[1])] = parts[0]
    n = len(table)
    if sorted(table) != list(range(n)):
        raise InputError(f"{STAGE}: {path}: unit ids are not 0..{n - 1}")
    return [table[i] for i in range(n)]


def units_to_text(ids: Iterable[int], units: Sequence[str]) -> str:
    """Map unit ids to text, skipping special units; `▁` (BPE word start) becomes a space."""
    pieces = []
    for i in ids:
        u = units[i]
        if u.startswith("<") and u.endswith(">"):
            continue
        pieces.append(u)
    return " ".join("".join(pieces).replace("▁", " ").split())
