"""Check every options section of a workflow config when the Snakefile loads.

The JSON schema checks the layout; the dataclasses of each stage and training step check keys,
types and ranges. Doing both at load time means `epochs: "ten"` or a threshold of 1.5 stops the
run in seconds with one line, not after the extraction it would otherwise wait for.
"""

from __future__ import annotations

from .errors import InputError
from .extract.cli import STAGES, stage_module
from .extract.common import RECIPES, stage_section
from .params import parse_params
from .train.params import check_train_config


def check_config(config: dict) -> None:
    """Raise InputError naming the section and key of the first bad value."""
    extract = config.get("extract") or {}
    recipe = extract.get("recipe", RECIPES[0])
    if recipe not in RECIPES:
        raise InputError(f"extract.recipe must be one of {list(RECIPES)}, got {recipe!r}")
    for stage in STAGES:
        if extract.get(stage) is None:
            continue
        section = stage_section(extract, stage)
        parse_params(stage_module(stage).Params, section, f"extract.{stage}")
    check_train_config(config.get("train") or {})


__all__ = ["InputError", "check_config"]
