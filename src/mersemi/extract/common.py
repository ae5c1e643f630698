"""Shared machinery of the extraction stages.

- `Clip`, `read_shard`: the clips of one manifest shard.
- `StageParams`: the options every stage has; `mersemi.params.parse_params` fills a stage's
  dataclass from `--params JSON` (unknown keys and wrong types are an `InputError`).
- `ClipFailure`, `Outcome`: per-clip failure isolation. A clip that cannot be processed gets
  `valid=False`, a zero feature row and a short reason code; the shard completes and the log
  reports the counts per reason. Anything else (a broken model or config) fails the job.
- `reasons_path`, `write_reasons`: the reasons sidecar `<out stem>.reasons.csv`
  (`name,valid,reason,detail`), written atomically *before* the tracked output.
- `prefetch`: decode clips in worker threads, in order, while the caller runs the model.
- `SpanningBatcher`, `MeanPool`: batches that span clips, and per-clip means of the results.
- `Recipe`, `RECIPES`, `recipe_option`, `recipe_precision`, `departures`: the feature recipe
  (`mertools`: MERTools' MER2024 extractors; `mersemi`: the project's own, docs/extraction.md).
- `write_feature_shard`: the reasons sidecar + the HDF5 feature file via `mersemi.store`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import typing
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_csv_atomic
from ..errors import InputError
from ..params import AT_LEAST_1, NONNEG, option
from ..progress import progress  # noqa: F401 - the stages import it from here
from ..store import FeatureMeta, write_features
from ..tables import read_csv_table

log = logging.getLogger(__name__)

# Keys of StageParams that change how fast a stage runs, not what it computes. They are logged
# but left out of the feature file's `params` attr, so shards run on different machines merge.
RUNTIME_KEYS = frozenset({"device", "workers", "prefetch", "batch_size", "span_clips"})


# --------------------------------------------------------------------------- clips and shards


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path


def read_shard(path: str | os.PathLike) -> list[Clip]:
    """The clips (name, path) of an inventory shard CSV or a manifest, in file order.

    Extraction sees names and paths only: labels and splits must not change its inputs."""
    df = read_csv_table(path, ["name", "path"], "shard")
    return [Clip(name=n, path=Path(p)) for n, p in zip(df["name"], df["path"], strict=True)]


# --------------------------------------------------------------------------- params


@dataclass
class StageParams:
    """Options every stage has. Stages subclass this with their own fields (all defaulted)."""

    device: str = option("auto", help="auto, cpu, cuda or cuda:N")
    precision: str = option(
        "auto",
        help="auto (bf16 on CUDA if supported, else fp16; fp32 on CPU), fp32, bf16 or fp16",
    )
    workers: int = option(2, range=NONNEG, help="decode threads (0: decode inline, no overlap)")
    prefetch: int = option(8, range=AT_LEAST_1, help="clips decoded ahead of the model")


def meta_params(params) -> dict:
    """The params that shape the numbers (runtime-only keys dropped), for the file attrs."""
    return {k: v for k, v in dataclasses.asdict(params).items() if k not in RUNTIME_KEYS}


# --------------------------------------------------------------------------- recipe

# mertools: MERTools' MER2024 feature_extraction scripts, reproduced (the default).
# mersemi: the project's own recipe (mean of layers, masked chunks, ...); docs/extraction.md.
Recipe = typing.Literal["mertools", "mersemi"]
RECIPES = typing.get_args(Recipe)
# The stages the recipe changes (it is part of their params, so switching it reruns them and
# what reads their output; audio and ASR do not depend on it).
RECIPE_STAGES = ("faces", "visual", "acoustic", "text")


# Commands that are a step of a stage and take its params (its config section).
STEP_OF = {"transcripts": "asr"}


def stage_section(extract: dict, stage: str) -> dict:
    """A stage's params from the config's `extract` section: its own section, with the
    section-wide `recipe` (default mertools) for the stages it changes; a stage's own
    `recipe` key overrides it (stated in the file attrs, like any param)."""
    stage = STEP_OF.get(stage, stage)
    section = dict(extract.get(stage) or {})
    if stage in RECIPE_STAGES:
        section = {"recipe": extract.get("recipe", RECIPES[0]), **section}
    return section


def recipe_option(help: str = '`mertools` or `mersemi` ("Recipes")'):
    """The `recipe` option of the stages it changes (RECIPE_STAGES; type `Recipe`)."""
    return option(RECIPES[0], help=help)


def recipe_precision(recipe: str, precision: str, mertools: str) -> str:
    """The precision a stage runs in: under `mertools`, 'auto' is MERTools' choice for the
    model (`mertools`: 'fp32' for CLIP and HuBERT, 'fp16' for Baichuan2 on CUDA)."""
    return mertools if recipe == "mertools" and precision == "auto" else precision


def departures(stage: str, params, mertools_values: dict) -> dict:
    """Keys set to other values than MERTools' under recipe `mertools`, logged as a warning;
    the stage records them in its file's attrs (`departures`), so no file silently mixes."""
    if getattr(params, "recipe", "mertools") != "mertools":
        return {}
    found = {
        k: getattr(params, k)
        for k, v in mertools_values.items()
        if getattr(params, k) is not None and getattr(params, k) != v
    }
    if found:
        log.warning(
            "%s: recipe mertools, but %s depart from MERTools (%s)",
            stage,
            ", ".join(f"{k}={v!r}" for k, v in found.items()),
            ", ".join(f"{k}={mertools_values[k]!r}" for k in found),
        )
    return found


# --------------------------------------------------------------------------- failures


class ClipFailure(Exception):
    """One clip cannot be processed. `reason` is a short code (no_face, no_audio, decode_error,
    ...) counted in the log and written to the reasons sidecar; `detail` is free text."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


class Outcome:
    """valid flag, reason and detail per clip of a shard; everyone starts valid."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.valid = np.ones(len(self.names), dtype=bool)
        self.reasons = [""] * len(self.names)
        self.details = [""] * len(self.names)

    def fail(self, i: int, reason: str, detail: str = "") -> None:
        self.valid[i] = False
        self.reasons[i] = reason
        self.details[i] = detail
        log.warning(
            "clip %s invalid: %s%s", self.names[i], reason, f" ({detail})" if detail else ""
        )

    def fail_with(self, i: int, err: ClipFailure) -> None:
        self.fail(i, err.reason, err.detail)

    def counts(self) -> dict[str, int]:
        return dict(Counter(r for r, v in zip(self.reasons, self.valid, strict=True) if not v))

    def log_summary(self, stage: str, out: str | os.PathLike) -> None:
        counts = self.counts()
        invalid = ", ".join(f"{r} {n}" for r, n in sorted(counts.items())) or "none"
        log.info(
            "%s %s: %d clips, %d valid, invalid: %s",
            stage,
            out,
            len(self.names),
            int(self.valid.sum()),
            invalid,
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "name": self.names,
                "valid": self.valid,
                "reason": self.reasons,
                "detail": self.details,
            }
        )


def reasons_path(out: str | os.PathLike) -> Path:
    """The reasons sidecar of an output: `x/shard-0003.h5` → `x/shard-0003.reasons.csv`."""
    out = Path(out)
    return out.with_name(f"{out.stem}.reasons.csv")


def write_reasons(outcome: Outcome, out: str | os.PathLike) -> Path:
    path = reasons_path(out)
    write_csv_atomic(outcome.frame(), path)
    return path


# --------------------------------------------------------------------------- progress + prefetch


T = typing.TypeVar("T")
R = typing.TypeVar("R")


def prefetch(
    fn: Callable[[T], R], items: Iterable[T], workers: int = 2, ahead: int = 8
) -> Iterator[tuple[T, R | None, ClipFailure | None]]:
    """Yield `(item, fn(item), None)` or `(item, None, ClipFailure)` in input order.

    `fn` runs in `workers` threads, at most `ahead` items in front of the consumer, so decoding
    (ffmpeg subprocesses, image ops that release the GIL) overlaps the model. Only ClipFailure
    is caught per item; any other exception is a bug or a broken setup and propagates.
    workers=0 runs `fn` inline (the one-clip-at-a-time baseline).
    """
    if workers <= 0:
        for item in items:
            try:
                yield item, fn(item), None
            except ClipFailure as e:
                yield item, None, e
        return
    it = iter(items)
    ex = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
    pending: deque = deque()
    try:
        for item in it:
            pending.append((item, ex.submit(fn, item)))
            if len(pending) >= max(ahead, 1):
                break
        while pending:
            item, fut = pending.popleft()
            nxt = next(it, _END)
            if nxt is not _END:
                pending.append((nxt, ex.submit(fn, nxt)))
            try:
                res = fut.result()
            except ClipFailure as e:
                yield item, None, e
            else:
                yield item, res, None
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


_END = object()


# --------------------------------------------------------------------------- batching


class SpanningBatcher:
    """Collect units (frames, audio chunks, sentences) of many clips into fixed-size batches.

    add(owner, units) queues the units of one clip (an array or list of length k); every full
    batch comes out of `add` / `flush` as (owners, units) with owners an int array.
    """

    def __init__(self, batch_size: int):
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self._owners: list[int] = []
        self._units: list = []

    def add(self, owner: int, units: Sequence) -> Iterator[tuple[np.ndarray, list]]:
        for u in units:
            self._owners.append(owner)
            self._units.append(u)
            if len(self._units) == self.batch_size:
                yield self._take()

    def flush(self) -> Iterator[tuple[np.ndarray, list]]:
        if self._units:
            yield self._take()

    def _take(self) -> tuple[np.ndarray, list]:
        owners, units = np.asarray(self._owners, dtype=np.int64), self._units
        self._owners, self._units = [], []
        return owners, units


class MeanPool:
    """Running per-clip sums (float64) of unit vectors; `mean()` gives zeros for clips with none."""

    def __init__(self, n: int, dim: int):
        self.sums = np.zeros((n, dim), dtype=np.float64)
        self.counts = np.zeros(n, dtype=np.int64)

    def add(self, owners: np.ndarray, feats: np.ndarray) -> None:
        feats = np.asarray(feats, dtype=np.float64)
        np.add.at(self.sums, owners, feats)
        np.add.at(self.counts, owners, 1)

    def mean(self) -> np.ndarray:
        out = np.zeros_like(self.sums, dtype=np.float32)
        has = self.counts > 0
        out[has] = (self.sums[has] / self.counts[has, None]).astype(np.float32)
        return out


def require_path(path: str | None, key: str, stage: str, what: str = "file") -> Path:
    """A model/config path from params: missing or absent is an InputError naming the key.

    No stage falls back to random or constant features when a model is missing."""
    if not path:
        raise InputError(
            f"extract {stage}: no {what} given; set params key {key!r} (config section of the "
            f"{stage} stage) to the local path (`mersemi models tiny --out DIR` writes tiny "
            "test models)"
        )
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"extract {stage}: {key}={str(path)!r} does not exist")
    return p


# --------------------------------------------------------------------------- output


# `layers: all` (every family with a layer sum): each hidden state pooled as `features` is and
# stored in the file's `layers` dataset (N x L x D) beside the family's default, for a probe.
ALL_LAYERS = "all"


def combine_layers(pooled: np.ndarray, indices: Sequence[int], recipe: str) -> np.ndarray:
    """Clip vectors (N, D) from each state's pooled vector (N, K, D): the sum (mertools) or
    the mean (mersemi) over `indices`, in float64, as the pooling is linear."""
    chosen = np.asarray(pooled, np.float64)[:, list(indices)]
    return (chosen.sum(1) if recipe == "mertools" else chosen.mean(1)).astype(np.float32)


def stored_layers_note(k: int) -> str:
    """How a file's `layers` attr names its `layers` dataset of k states."""
    return f"dataset layers: each of the {k} states, pooled alike"


def write_feature_shard(
    out: str | os.PathLike,
    meta: FeatureMeta,
    outcome: Outcome,
    features: np.ndarray,
    stage: str,
    layers: np.ndarray | None = None,
) -> None:
    """Zero the rows of invalid clips, write the reasons sidecar, then the feature file
    (with `layers`, N x L x D: every hidden state's pooled vector, `layers: all`).

    The feature file is what the workflow tracks; it appears last, so when it exists its
    sidecar exists too.
    """
    features = np.asarray(features, dtype=np.float32).copy()
    features[~outcome.valid] = 0.0
    if layers is not None:
        layers = np.asarray(layers, dtype=np.float32).copy()
        layers[~outcome.valid] = 0.0
    write_reasons(outcome, out)
    write_features(out, meta, outcome.names, features, outcome.valid, layers)
    outcome.log_summary(stage, out)
