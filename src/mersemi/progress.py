"""Progress a person can follow: a tqdm bar on a terminal; in a log file (a cluster job's
stderr) one line every MERSEMI_PROGRESS_INTERVAL seconds (default 30) and at the end:

    12:03:41 INFO mersemi.progress: faces: 120/500 clips (24%), 3.2 clips/s, ETA 0:01:58

MERSEMI_NO_PROGRESS=1 turns both off.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable
from datetime import timedelta

log = logging.getLogger(__name__)


def progress(
    iterable: Iterable | None = None,
    total: int | None = None,
    desc: str = "",
    unit: str = "clip",
    disable: bool = False,
    **kw,
):
    """tqdm on a terminal, `LogProgress` otherwise (same calls: iterate, update, close)."""
    disable = disable or os.environ.get("MERSEMI_NO_PROGRESS") == "1"
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable,
                    dynamic_ncols=True, **kw)  # fmt: skip
    interval = float(os.environ.get("MERSEMI_PROGRESS_INTERVAL", "30"))
    return LogProgress(iterable, total, desc, unit, interval, disable)


class LogProgress:
    """Counts work and logs done/total, rate and ETA at a steady interval, and at the end."""

    def __init__(self, iterable=None, total=None, desc="", unit="it", interval=30.0,
                 disable=False):  # fmt: skip
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.interval, self.disable = interval, disable
        self.n, self.postfix, self.closed = 0, "", False
        self.start = self.last = time.monotonic()

    def __iter__(self):
        current = False
        try:
            for item in self.iterable:
                current = True
                yield item
                current = False
                self.update(1)
        finally:  # also when the loop breaks early (early stopping), counting its last item
            self.n += current
            self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        finished = self.total is not None and self.n >= self.total  # close() logs that line
        if now - self.last >= self.interval and not finished:
            self.last = now
            self._log(now)

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._log(time.monotonic(), done=True)

    def _log(self, now: float, done: bool = False) -> None:
        if self.disable:
            return
        secs = now - self.start
        rate = self.n / secs if secs > 0 else 0.0
        parts = [f"{self.desc}: {self.n}" + (f"/{self.total}" if self.total else "")
                 + f" {self.unit}s"]  # fmt: skip
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{rate:.2f} {self.unit}s/s")
        if done:
            parts.append(f"done in {timedelta(seconds=round(secs))}")
        elif self.total and rate > 0:
            parts.append(f"ETA {timedelta(seconds=round((self.total - self.n) / rate))}")
        if self.postfix:
            parts.append(self.postfix)
        log.info(", ".join(parts))
