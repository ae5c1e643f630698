"""The option tables of docs/, rendered from the options' declarations (`mersemi.params.option`).

A doc holds each table between `<!-- options: NAME -->` and `<!-- /options -->`; NAME is a key
of `TABLES` (a stage, `extract.common`, or a part of the training steps' options). The table
lists the options a class declares itself (not those it inherits; each has its own table):
key, default, what is allowed (type, choices, bounds) and the one-line help.

    python -m mersemi.optiondocs            # exit 1 and name the tables that differ
    python -m mersemi.optiondocs --write    # rewrite them in docs/extraction.md, training.md

tests/test_params.py checks that the docs hold the rendering, so they cannot drift.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import types
import typing
from pathlib import Path

from .extract.cli import STAGES, stage_module
from .extract.common import StageParams
from .featuresets import BenchmarkOptions, FeatureSetOptions, TrainFeatures
from .params import Range, choices, field_default
from .train import params as train
from .train.search import SearchParams

# The docs the tables live in (a source checkout: src/mersemi/ -> the repository root).
DOCS = [Path(__file__).resolve().parents[2] / "docs" / n for n in ("extraction.md", "training.md")]

# Table name -> (params class, {label: defaults that replace the class's}: a second default).
TABLES: dict[str, tuple[type, dict[str, dict]]] = {
    "extract.common": (StageParams, {}),
    **{stage: (stage_module(stage).Params, {}) for stage in STAGES},
    "features": (FeatureSetOptions, {}),
    "train.features": (TrainFeatures, {}),
    "train.common": (train.Common, {}),
    "train.model": (train.ModelParams, {}),
    "train.nee": (train.NEEParams, {}),
    "train.pretrain": (train.PretrainParams, {}),
    "train.cv": (train.CVParams, {"finetune step 2": train.step2_defaults()}),
    "train.finetune": (train.FinetuneParams, {}),
    "train.baseline": (train.BaselineParams, {}),
    "train.probe": (train.ProbeParams, {}),
    "train.feature_bench": (train.BenchParams, {}),
    "feature_benchmark": (BenchmarkOptions, {}),
    "baseline_search": (SearchParams, {}),
    "train.pseudo": (train.PseudoParams, {}),
    "train.vote": (train.VoteParams, {}),
}

BLOCK = re.compile(r"(<!-- options: (\S+) -->\n)(.*?)(<!-- /options -->)", re.S)


def own_fields(cls) -> list[dataclasses.Field]:
    """The fields `cls` declares itself (an inherited field redeclared counts as its own)."""
    own = cls.__dict__.get("__annotations__", {})
    return [f for f in dataclasses.fields(cls) if f.name in own]


def _value(v) -> str:
    """A value as a config file spells it (a string bare, as in `backend: opencv`)."""
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))


_TYPES = {list: "list", dict: "dict", str: "str", int: "int", float: "float", bool: "bool"}


def _type_name(hint) -> tuple[str, bool]:
    """(the type's name, whether null is allowed too)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        names = [_type_name(h)[0] for h in args if h is not type(None)]
        return " or ".join(names), type(None) in args
    origin = typing.get_origin(hint) or hint
    if origin is typing.Literal:  # a word among other types: `int or list or "all"`
        return " or ".join(f'"{v}"' for v in typing.get_args(hint)), False
    return _TYPES.get(origin, str(hint)), False


def _rule(rule) -> str:
    if isinstance(rule, Range):
        return str(rule) if rule.hi == math.inf else f"in {rule}"
    return "one of " + ", ".join(f"`{v}`" for v in rule)


def allowed(cls, f: dataclasses.Field) -> str:
    """What `f` allows, in words: `int >= 1 and finite`, `` `opencv`, `openface` ``, ..."""
    hint = typing.get_type_hints(cls)[f.name]
    values = choices(hint)
    if values is not None:
        return ", ".join(f"`{_value(v)}`" for v in values)
    m = f.metadata
    name, nullable = _type_name(hint)
    parts = [name + (f" {m['range']}" if m.get("range") is not None else "")]
    parts[0] += ", or null" if nullable else ""
    if m.get("keys") is not None:
        parts.append("keys among " + ", ".join(f"`{k}`" for k in m["keys"]))
    if m.get("items") is not None:
        parts.append(f"each {_rule(m['items'])}")
    if m.get("distinct"):
        parts.append("distinct, at least one")
    if m.get("total") is not None:
        parts.append(f"sum {m['total']}")
    if m.get("fill"):
        parts.append("a key left out keeps its default")
    return "; ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(name: str) -> str:
    """The markdown table of `TABLES[name]`."""
    cls, alternatives = TABLES[name]
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for f in own_fields(cls):
        default = f"`{_value(field_default(f))}`"
        for label, values in alternatives.items():
            if f.name in values:
                default += f" ({label}: `{_value(values[f.name])}`)"
        cells = [f"`{f.name}`", default, allowed(cls, f), f.metadata.get("help", "")]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


def update(text: str) -> str:
    """`text` with every options block replaced by its rendering (an unknown name: KeyError)."""
    return BLOCK.sub(lambda m: m[1] + render(m[2]) + m[4], text)


def names_in(text: str) -> list[str]:
    return [m[2] for m in BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mersemi.optiondocs", description=__doc__)
    ap.add_argument("--write", action="store_true", help="rewrite the tables in place")
    ap.add_argument("docs", nargs="*", type=Path, default=DOCS, help="markdown files")
    args = ap.parse_args(argv)
    stale = []
    for path in args.docs:
        text = path.read_text(encoding="utf-8")
        new = update(text)
        if new != text:
            stale.append(str(path))
            if args.write:
                path.write_text(new, encoding="utf-8")
    if stale and not args.write:
        print(f"option tables out of date in {', '.join(stale)}: run with --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
