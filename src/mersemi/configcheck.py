"""Check every options section of a workflow config when the Snakefile loads.

The JSON schema checks the layout (sections, keys, types) and states no bound of its own; the
dataclasses of each stage and training step (and `Layout` for the top-level values) check
keys, types, choices and ranges, each by its one declaration (`mersemi.params.option`). Doing
both at load time means `epochs: "ten"` or a threshold of 1.5 stops the run in seconds with
one line, not after the extraction it would otherwise wait for.

The load calls, in order: `typed_overrides` and `check_schema` (`mersemi.workflow.prepare_config`:
`--config` values mean what they would in a config file; a schema violation is one line), then
Snakemake's `validate` (the Snakefile; it fills in the schema's defaults), then `check_config`
(`mersemi.workflow.load_run`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import yaml

from .errors import InputError, shorten
from .extract.cli import STAGES, stage_module
from .extract.common import RECIPE_STAGES, stage_section
from .featuresets import check_feature_sets
from .params import AT_LEAST_1, option, option_error, parse_params
from .train.params import check_train_config
from .train.search import parse_search

# Package data, so an installed mersemi finds it too (the Snakefile validates with this file).
SCHEMA = resources.files("mersemi") / "schemas" / "config.schema.yaml"

# What a config file's YAML makes of a plain scalar besides a string (yaml.safe_load).
_SCALARS = (bool, int, float, type(None))


def yaml_scalar(text: str):
    """`text` as a config file reads the same plain scalar: an int, float, bool or None when
    yaml.safe_load reads it as one (`0.01`, `-1`, `true`, `null`), else `text` unchanged
    (dates, lists and the empty string stay strings)."""
    if not text:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, _SCALARS) else text


def typed_overrides(config: dict, overrides: Mapping) -> dict:
    """Give the `--config` overrides in `config` the types a config file would give them.

    Snakemake reads a `--config` value with int, float and bool first, then with YAML's
    BaseLoader, which leaves every nested scalar a string: `train={"finetune": {"lr": 0.01}}`
    arrives as lr='0.01'. Each string leaf of `overrides` (Snakemake's parsed `--config`,
    `workflow.config_settings.config`) is read again as yaml.safe_load reads a scalar, and the
    value at the same key path in `config` is replaced when it still is that raw string.
    Jobs that Snakemake starts again get the same overrides, so they see the same types.
    Changes `config` in place and returns it.
    """

    def retype(target, override) -> None:
        pairs = override.items() if isinstance(override, Mapping) else enumerate(override)
        for key, raw in pairs:
            try:
                here = target[key]
            except (KeyError, IndexError, TypeError):  # not (or no longer) in the config
                continue
            if isinstance(raw, str):
                if here == raw:
                    target[key] = yaml_scalar(raw)
            elif isinstance(raw, (Mapping, list)) and isinstance(here, (dict, list)):
                retype(here, raw)

    retype(config, overrides)
    return config


def _key_path(path) -> str:
    """`extract.recipe`, `train.pseudo.sweep[1]`: where in the config an error is."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def schema_message(error) -> str:
    """One line for a jsonschema ValidationError: `config <key path>: <what is wrong>`, the
    offending value shortened (a value pasted into a config can be megabytes long)."""
    message = error.message
    value = repr(error.instance)
    if value in message:
        message = message.replace(value, shorten(error.instance), 1)
    where = _key_path(error.absolute_path)
    return f"config {where}: {message}" if where else f"config: {message}"


def _filling_defaults(validator_class):
    """The validator Snakemake's validate() uses: it fills in each `default` as it goes, so
    this check sees the config that validate() will see."""
    from jsonschema import validators

    properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, props, instance, schema):
        if validator.is_type(instance, "object"):
            for name, subschema in props.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from properties(validator, props, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def check_schema(config: dict, schema: dict | None = None) -> None:
    """Raise InputError naming the key path, value and rule of the schema violation that
    jsonschema's best_match picks; `config` itself is not changed."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    if schema is None:
        schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    validator = _filling_defaults(Draft202012Validator)(schema)
    error = best_match(validator.iter_errors(copy.deepcopy(config)))
    if error is not None:
        raise InputError(schema_message(error))


@dataclass
class Layout:
    """The config's top-level values that are options (the schema gives their default too:
    Snakemake's validate() fills it in; tests/test_params.py checks that the two agree)."""

    shards: int = option(
        8,
        range=AT_LEAST_1,
        help="number of extraction shards (fixed per dataset; changing it reshards)",
    )


def check_config(config: dict) -> None:
    """Raise InputError naming the section and key of the first bad value: the top-level
    options, the section-wide `extract.recipe` (by the stages' `recipe` declaration), every
    extraction stage's section, every feature set (`features:`, each set's params by its
    stage) and `train.features`, every training job's section and `baseline_search:`."""
    parse_params(Layout, {k: config[k] for k in ("shards",) if k in config}, "config")
    extract = config.get("extract") or {}
    if "recipe" in extract:
        why = option_error(stage_module(RECIPE_STAGES[0]).Params, "recipe", extract["recipe"])
        if why is not None:
            raise InputError(f"extract.{why}")
    for stage in STAGES:
        section = stage_section(extract, stage)
        parse_params(stage_module(stage).Params, section, f"extract.{stage}")
    check_feature_sets(config)
    check_train_config(config.get("train") or {})
    parse_search(config.get("baseline_search"))


__all__ = [
    "SCHEMA",
    "InputError",
    "Layout",
    "check_config",
    "check_schema",
    "schema_message",
    "typed_overrides",
    "yaml_scalar",
]
