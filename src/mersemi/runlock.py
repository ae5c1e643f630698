"""One workflow at a time per results folder.

The main Snakemake process of a workflow holds an exclusive `flock` on `<results>/.mersemi.lock`
for as long as it runs (the open file is the lock; the kernel drops it when the process ends,
however it ends). A process that finds the lock taken writes nothing a running workflow reads:
a dry run plans on a staged copy of what changed, a run is refused (mersemi.workflow).
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LOCK_NAME = ".mersemi.lock"


@dataclass
class ResultsLock:
    path: Path
    held: bool  # this process holds it
    holder: str  # who does: "pid N on HOST since TIME" (as the holder wrote it)
    file: IO[bytes] | None = None  # kept open while held

    def refusal(self) -> str:
        return (
            f"{self.path.parent} is in use by another workflow ({self.holder or 'unknown'} "
            f"holds {self.path}); wait for it to finish, or choose another `results:` folder"
        )


def claim(results: str | os.PathLike) -> ResultsLock:
    """Take the results folder's lock without waiting, or say who holds it.

    OSError (a read-only or full results folder) is the caller's to report."""
    path = Path(results) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    # unbuffered: a full disk fails the write itself, never a later flush
    f = open(path, "a+b", buffering=0)  # noqa: SIM115 - held open for the process' life
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().decode("utf-8", "replace").strip()
        f.close()
        return ResultsLock(path, False, holder)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        f.truncate(0)
        f.write(f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode())
    except OSError as e:  # a full disk: name the file, as open() would
        f.close()
        raise OSError(e.errno, e.strerror, str(path)) from None
    return ResultsLock(path, True, "this process", f)


def check_writable(results: str | os.PathLike, depth: int = 2) -> None:
    """Raise the OSError of the first folder under `results` (itself and `depth` levels below)
    that refuses a file: a read-only mount at results/features stops the load with one line,
    not a job, or Snakemake itself, halfway through the run."""
    level = [Path(results)]
    folders = list(level)
    for _ in range(depth):
        level = [p for f in level for p in _subfolders(f)]
        folders += level
    for folder in folders:
        try:
            # O_TMPFILE where the file system has it: nothing appears in the folder
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(folder)) from None


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []
