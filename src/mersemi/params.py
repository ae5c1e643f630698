"""Step options as dataclasses, filled from `--params JSON` (or a dict).

Every CLI step that the workflow drives takes its config section this way. Unknown keys and
values of the wrong type are an `InputError` that names them; a dataclass may define
`check()` for value constraints.
"""

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence

from .errors import InputError

P = typing.TypeVar("P")


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
    check = getattr(params, "check", None)
    if check is not None:
        check()
    return params
