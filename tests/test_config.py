"""Both shipped configs validate, and every stage/step section holds only keys its CLI knows."""

from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from mersemi.errors import InputError
from mersemi.extract.cli import stage_module
from mersemi.params import parse_params
from mersemi.train import params as tp

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
TRAIN = {
    "pretrain": tp.PretrainParams,
    "baseline": tp.BaselineParams,
    "finetune": tp.FinetuneParams,
    "step2": tp.FinetuneParams,
    "pseudo": tp.PseudoParams,
    "vote": tp.VoteParams,
}


@pytest.mark.parametrize("name", ["config.yaml", "config.mer2024.yaml"])
def test_shipped_config_is_valid(name):
    config = yaml.safe_load((REPO / name).read_text())
    validate(config, SCHEMA)
    for stage, section in config["extract"].items():
        parse_params(stage_module(stage).Params, section, f"{name} extract.{stage}")
    for step, cls in TRAIN.items():
        common = config["train"]["common"] if step in ("pretrain", "baseline", "finetune") else {}
        tp.parse_params(cls, common | config["train"][step])


def test_wrong_key_and_type_are_named():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    with pytest.raises(Exception, match="shard"):
        validate({**config, "shard": 3}, SCHEMA)
    with pytest.raises(Exception, match="'two' is not of type 'integer'"):
        validate({**config, "shards": "two"}, SCHEMA)
    with pytest.raises(InputError, match="max_frame"):
        parse_params(stage_module("faces").Params, {"max_frame": 3})


def test_schema_fills_defaults():
    config = {"data": {"labeled_dir": "l", "label_csv": "l.csv", "unlabeled_dir": "u"}}
    validate(config, SCHEMA)
    assert config["shards"] == 8 and config["data"]["columns"]["label"] == "discrete"
    assert config["extract"]["visual"] == {} and config["models"]["tiny"] is False
