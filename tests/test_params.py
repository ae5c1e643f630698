"""What the train steps add to the stage params contract (tests/test_extract_common.py):
mappings as input, trusted base values, dict and list fields."""

from dataclasses import dataclass, field

import pytest

from mersemi.errors import InputError
from mersemi.params import parse_params


@dataclass
class Opts:
    epochs: int = 20
    lr: float = 1e-4
    weights: dict = field(default_factory=lambda: {"A": 0.7})
    classes: list = field(default_factory=lambda: ["sad"])


def test_mapping_and_base_override_defaults():
    assert parse_params(Opts, {"lr": 1}, base={"epochs": 5}) == Opts(epochs=5, lr=1)
    assert parse_params(Opts, '{"epochs": 3}', base={"epochs": 5}).epochs == 3


def test_container_fields_are_type_checked():
    assert parse_params(Opts, {"weights": {"F": 1.0}, "classes": []}).weights == {"F": 1.0}
    with pytest.raises(InputError, match=r"weights=\[1\] has type list, expected dict"):
        parse_params(Opts, '{"weights": [1]}')
    with pytest.raises(InputError, match="classes='sad' has type str, expected list"):
        parse_params(Opts, {"classes": "sad"})


def test_every_numeric_option_of_every_stage_and_step_has_a_range():
    """RANGES is the one table of allowed values: a new number without a range fails here."""
    from mersemi.extract.cli import STAGES, stage_module
    from mersemi.params import RANGES, numeric_fields
    from mersemi.train.params import CONFIG_STEPS

    classes = [stage_module(s).Params for s in STAGES] + [c for c, _, _ in CONFIG_STEPS]
    missing = {c.__name__: [f for f in numeric_fields(c) if f not in RANGES] for c in classes}
    assert not {k: v for k, v in missing.items() if v}
    for c in classes:  # and every default lies inside its own range
        parse_params(c, None)
