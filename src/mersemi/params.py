"""Step options as dataclasses, filled from `--params JSON` (or a dict).

Every CLI step that the workflow drives takes its config section this way. Each option is
declared once, on its dataclass field: its type (`typing.Literal[...]` for a choice), its
default, its bounds and a one-line help, e.g.

    size: int | None = option(None, range=Range(8), help="side of the square crops")

`parse_params` reads those declarations: unknown keys, values of the wrong type, a choice
not among its values and numbers outside their `Range` (for a dict or list option: each
value, and its keys) are an `InputError` line that names them. A dataclass may define
`check()` for rules between several fields (each class of its MRO that defines one is run;
`check()` raises an InputError without the `what` prefix, which `check_params` adds).
`mersemi.optiondocs` renders the same declarations as the tables in docs/.
"""

import copy
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

    def as_number(self) -> str:
        """What an item must be, in words: 'a number in [0, 1]', 'a finite number >= 0'."""
        if self.hi == INF:
            text = f"a finite number {'>' if self.lo_open else '>='} {self.lo:g}"
            return text + "".join(f", or {a}" for a in self.also)
        return f"a number in {self}"


POSITIVE = Range(0, INF, lo_open=True)
NONNEG = Range(0)
AT_LEAST_1 = Range(1)
UNIT = Range(0, 1)


def option(
    default=dataclasses.MISSING,
    *,
    help: str,
    range: Range | None = None,
    keys: tuple | None = None,
    items: "Range | tuple | None" = None,
    noun: str = "key(s)",
    fill: bool = False,
    total: Range | None = None,
    distinct: bool = False,
):
    """A dataclass field that declares an option: its default, its one-line `help` and its
    rule. `range`: a number's bounds. A dict or list option: `items`, each value's rule (a
    Range, or a tuple of the allowed values); a dict's `keys` (the allowed ones, `noun` names
    them in errors), `fill` (missing keys take the default's values, in `keys` order) and
    `total` (the range of the values' sum); a list's `distinct` (at least one value, each at
    most once). A list or dict default is copied per instance."""
    metadata = {"help": help, "range": range, "keys": keys, "items": items, "noun": noun}
    metadata |= {"fill": fill, "total": total, "distinct": distinct}
    if isinstance(default, list | dict):
        value = default
        return dataclasses.field(default_factory=lambda: copy.deepcopy(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def like(cls, name: str, default=dataclasses.MISSING, *, help: str | None = None):
    """Option `name` of `cls` again, with another default (and help) but the same rule: a
    class that changes an inherited default, or a step with the same option, does not state
    the bound a second time."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    rule = dict(f.metadata)
    rule["help"] = rule["help"] if help is None else help
    return option(field_default(f) if default is dataclasses.MISSING else default, **rule)


def field_default(f: dataclasses.Field):
    """The default of a dataclass field (its factory called)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def choices(hint) -> tuple | None:
    """The allowed values of a `Literal[...]` type (`Literal[...] | None`: None among them)."""
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [choices(h) or (None,) * (h is type(None)) for h in typing.get_args(hint)]
        if any(found) and all(found):
            return tuple(v for vs in found for v in vs)
    return None


def _numeric(h) -> bool:
    union = typing.get_origin(h) in (typing.Union, types.UnionType)
    return any(a in (int, float) for a in (typing.get_args(h) if union else (h,)))


def numeric_fields(cls) -> list[str]:
    """The int/float options of a params dataclass (bools are not numbers here)."""
    hints = typing.get_type_hints(cls)
    return [f.name for f in dataclasses.fields(cls) if _numeric(hints[f.name])]


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def option_error(cls, name: str, value) -> str | None:
    """What is wrong with `value` as option `name` of `cls` by its declaration (None: fine):
    `size=3 must be >= 8 and finite`, `use must be one of ['paper', ...], got 'best'`."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    hint = typing.get_type_hints(cls)[name]
    rule = f.metadata
    allowed = choices(hint)
    if allowed is not None:
        if value not in allowed:
            return f"{name} must be one of {list(allowed)}, got {value!r}"
        return None
    if value is None:
        return None
    if _numeric(hint) and _is_number(value):
        bounds = rule.get("range")
        if bounds is None:
            return None if math.isfinite(value) else f"{name}={value!r} must be finite"
        return None if value in bounds else f"{name}={value!r} must be {bounds}"
    items, keys, noun = rule.get("items"), rule.get("keys"), rule.get("noun", "key(s)")
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(keys)) if keys is not None else []
        if unknown:
            return f"{name}: unknown {noun} {unknown}; allowed: {list(keys)}"
        for k, v in value.items():
            if (why := _item_error(items, v)) is not None:
                return f"{name}: {k}={v!r} must be {why}"
        total = rule.get("total")
        if total is not None and sum(value.values()) not in total:
            return f"{name}: sum={sum(value.values())!r} must be {total}"
    elif isinstance(value, list | tuple):
        if rule.get("distinct") and (not value or len(set(value)) != len(value)):
            return f"{name} must list distinct values, at least one, got {list(value)}"
        if isinstance(items, tuple):
            unknown = [v for v in value if v not in items]
            return f"{name}: unknown {noun} {unknown}; allowed: {list(items)}" if unknown else None
        for v in value:
            if (why := _item_error(items, v)) is not None:
                return f"{name}: {v!r} must be {why}"
    return None


def _item_error(rule, v) -> str | None:
    if isinstance(rule, Range):
        return None if _is_number(v) and v in rule else rule.as_number()
    if isinstance(rule, tuple):
        return None if v in rule else f"one of {list(rule)}"
    return None


def check_params(params, what: str) -> None:
    """Every option of `params` by its declaration, then each `check()` of its classes (the
    rules between fields); a failure is one InputError line `what: ...`. Dict options with
    `fill` get their missing keys from the default first."""
    cls = type(params)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        value = getattr(params, f.name)
        if f.metadata.get("fill") and isinstance(value, Mapping):
            default = field_default(f)
            value = {**default, **value}
            setattr(params, f.name, {k: value[k] for k in [*default, *value] if k in value})
        why = option_error(cls, f.name, getattr(params, f.name))
        if why is not None:
            raise InputError(f"{what}: {why}")
        if _float_values(hints[f.name]) and isinstance(getattr(params, f.name), Mapping):
            setattr(params, f.name, {k: float(v) for k, v in getattr(params, f.name).items()})
    for klass in reversed(cls.__mro__):
        check = klass.__dict__.get("check")
        if check is not None:
            try:
                check(params)
            except InputError as e:
                raise InputError(f"{what}: {e}") from None


def _float_values(hint) -> bool:
    """`dict[str, float]`: the values are stored as floats (an int given is converted)."""
    return typing.get_origin(hint) is dict and typing.get_args(hint)[-1:] == (float,)


def _type_ok(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if hint is typing.Any or origin is typing.Literal:  # a choice: checked by its values
        return True
    if origin in (typing.Union, types.UnionType):
        if choices(hint) is not None:  # `Literal[...] | None`: a choice, as above
            return True
        return any(  # a word among other types: one of its values
            value in typing.get_args(h) if typing.get_origin(h) is typing.Literal
            else _type_ok(value, h)
            for h in typing.get_args(hint)
        )  # fmt: skip
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


def _type_text(hint) -> str:
    """`int | list[int] | 'all' | None` for an error line."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " | ".join(_type_text(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is typing.Literal:
        return " | ".join(repr(v) for v in typing.get_args(hint))
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


def parse_params(
    cls: type[P],
    given: str | Mapping | None,
    what: str = "--params",
    base: Mapping | None = None,
) -> P:
    """Build `cls` from a JSON object string or a mapping (None or '' → defaults).

    `base` overrides the dataclass defaults before `given` (for example the paper's step-2
    values); it is trusted code, so only `given` is type-checked (every value, base ones
    included, is checked against its declaration).
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
            expected = _type_text(hints[k])
            raise InputError(f"{what}: {k}={v!r} has type {type(v).__name__}, expected {expected}")
    params = cls(**{**(base or {}), **given})
    check_params(params, what)
    return params
