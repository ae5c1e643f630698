"""Step options as dataclasses, filled from `--params JSON` (or a dict).

Every CLI step that the workflow drives takes its config section this way. Unknown keys,
values of the wrong type and numbers outside their range (`RANGES`, by option name, the same
for every stage and step) are an `InputError` that names them; a dataclass may define
`check()` for constraints between values.
"""

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence

from .errors import InputError

P = typing.TypeVar("P")

INF = math.inf


@dataclasses.dataclass(frozen=True)
class Range:
    """lo..hi, each end open or closed; `also`: special values outside it (-1: "all")."""

    lo: float = -INF
    hi: float = INF
    lo_open: bool = False
    hi_open: bool = False
    also: tuple = ()

    def __contains__(self, v) -> bool:
        if v in self.also:
            return True
        if not math.isfinite(v):
            return False
        above = v > self.lo if self.lo_open else v >= self.lo
        below = v < self.hi if self.hi_open else v <= self.hi
        return above and below

    def __str__(self) -> str:
        if self.hi == INF:
            text = f"{'>' if self.lo_open else '>='} {self.lo:g}"
        else:
            left, right = "(["[not self.lo_open], ")]"[not self.hi_open]
            text = f"{left}{self.lo:g}, {self.hi:g}{right}"
        text += " and finite" if self.hi == INF else ""
        return text + "".join(f", or {a}" for a in self.also)


POSITIVE = Range(0, INF, lo_open=True)
NONNEG = Range(0)
AT_LEAST_1 = Range(1)
UNIT = Range(0, 1)
# Every numeric option of every extraction stage and training step, by name. A new numeric
# option needs its range here (tests/test_params.py checks that none is missing).
RANGES: dict[str, Range] = {
    # rates, temperatures, durations
    "lr": POSITIVE,
    "temperature_init": POSITIVE,
    "chunk_seconds": POSITIVE,
    "max_seconds": POSITIVE,
    "timeout": POSITIVE,
    "openface_scale": POSITIVE,
    "min_chunk_seconds": NONNEG,
    "C": POSITIVE,
    # probabilities and shares
    "dropout": Range(0, 1, hi_open=True),
    "beta_start": Range(0, 1, lo_open=True, hi_open=True),
    "beta_end": Range(0, 1, lo_open=True, hi_open=True),
    "ctc_weight": UNIT,
    "reverse_weight": UNIT,
    "budget": Range(0, 1, lo_open=True),
    "precision_target": Range(0, 1, lo_open=True),
    # loss weights, regularisation, geometry
    "weight_decay": NONNEG,
    "weight_ne": NONNEG,
    "weight_ae": NONNEG,
    "contrastive_weight": NONNEG,
    "margin": NONNEG,
    "max_angle": Range(0, 180),
    "scale_factor": Range(1, INF, lo_open=True),
    # counts (0 where it means "no limit" or "off")
    "batch_size": AT_LEAST_1,
    "eval_batch_size": AT_LEAST_1,
    "epochs": AT_LEAST_1,
    "folds": Range(2),
    "hidden": AT_LEAST_1,
    "d_model": AT_LEAST_1,
    "heads": AT_LEAST_1,
    "layers": AT_LEAST_1,
    "nee_steps": AT_LEAST_1,
    "threads": AT_LEAST_1,
    "beam_size": AT_LEAST_1,
    "num_mel_bins": AT_LEAST_1,
    "max_tokens": AT_LEAST_1,
    "min_face": AT_LEAST_1,
    "size": AT_LEAST_1,
    "prefetch": AT_LEAST_1,
    "oversample_target": AT_LEAST_1,
    "max_iter": AT_LEAST_1,
    "min_support": AT_LEAST_1,
    "pca": NONNEG,
    "sample_rate": Range(1000),
    "step": Range(1, 2),
    "seed": NONNEG,
    "patience": NONNEG,
    "workers": NONNEG,
    "max_frames": NONNEG,
    "max_crops": NONNEG,
    "max_side": NONNEG,
    "min_neighbors": NONNEG,
    "chunk_size": Range(1, also=(-1,)),
    "num_left_chunks": Range(0, also=(-1,)),
}


def numeric_fields(cls) -> list[str]:
    """The int/float options of a params dataclass (bools are not numbers here)."""
    hints = typing.get_type_hints(cls)

    def numeric(h) -> bool:
        args = (
            typing.get_args(h) if typing.get_origin(h) in (typing.Union, types.UnionType) else (h,)
        )
        return any(a in (int, float) for a in args)

    return [f.name for f in dataclasses.fields(cls) if numeric(hints[f.name])]


def check_ranges(params, what: str) -> None:
    """Every numeric option inside its range (None: an optional option left unset)."""
    for name in numeric_fields(type(params)):
        value = getattr(params, name)
        allowed = RANGES.get(name)
        if value is None or (allowed is None and math.isfinite(value)):
            continue
        if allowed is None or value not in allowed:
            raise InputError(f"{what}: {name}={value!r} must be {allowed or 'finite'}")


def _type_ok(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if hint is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        return isinstance(value, list | tuple)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def parse_params(
    cls: type[P],
    given: str | Mapping | None,
    what: str = "--params",
    base: Mapping | None = None,
) -> P:
    """Build `cls` from a JSON object string or a mapping (None or '' → defaults).

    `base` overrides the dataclass defaults before `given` (for example the paper's step-2
    values); it is trusted code, so only `given` is checked.
    """
    if isinstance(given, str):
        try:
            given = json.loads(given) if given.strip() else None
        except json.JSONDecodeError as e:
            raise InputError(f"{what}: not valid JSON ({e})") from None
    given = {} if given is None else given
    if not isinstance(given, Mapping):
        raise InputError(f"{what}: expected a JSON object, got {type(given).__name__}")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(given) - fields)
    if unknown:
        raise InputError(
            f"{what}: unknown key(s) {unknown} for {cls.__name__}; known keys: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    for k, v in given.items():
        if not _type_ok(v, hints[k]):
            expected = getattr(hints[k], "__name__", hints[k])
            raise InputError(f"{what}: {k}={v!r} has type {type(v).__name__}, expected {expected}")
    params = cls(**{**(base or {}), **given})
    check_ranges(params, what)
    check = getattr(params, "check", None)
    if check is not None:
        check()
    return params
