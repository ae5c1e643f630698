"""Both shipped configs validate, and every stage/step section holds only keys its CLI knows."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.cli import parse_config
from snakemake.utils import validate

from mersemi.configcheck import check_config, check_schema, typed_overrides
from mersemi.errors import InputError
from mersemi.extract.cli import stage_module
from mersemi.params import parse_params

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "src" / "mersemi" / "schemas" / "config.schema.yaml")


@pytest.mark.parametrize("name", ["config.yaml", "config.mer2024.yaml"])
def test_shipped_config_is_valid(name):
    config = yaml.safe_load((REPO / name).read_text())
    validate(config, SCHEMA)
    check_config(config)


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"finetune": {"epochs": "ten"}}, "train.finetune: epochs='ten' has type str"),
        ({"pseudo": {"thresholds": {"sad": "high"}}}, "sad='high' must be a number in"),
        ({"pseudo": {"thresholds": {"sad": 1.5}}}, "sad=1.5 must be a number in"),
        ({"pseudo": {"thresholds": {"worried": -1}}}, "worried=-1 must be a number in"),
        ({"step2": {"lr": "fast"}}, "train.step2: lr='fast'"),
        # the workflow names each fine-tuning job's step itself
        ({"step2": {"step": 1}}, "train.step2: step is not an option here"),
        (
            {"vote": {"use": "best"}},
            "train.vote: use must be one of \\['paper', 'fitted', 'auto'\\]",
        ),
        # ranges: each failure names the key, the value and what is allowed
        ({"finetune": {"lr": -1}}, r"train.finetune: lr=-1 must be > 0 and finite"),
        ({"finetune": {"lr": float("nan")}}, r"train.finetune: lr=nan must be > 0 and finite"),
        ({"finetune": {"dropout": 1.5}}, r"dropout=1.5 must be \[0, 1\)"),
        ({"pretrain": {"weight_ne": -5}}, r"train.pretrain: weight_ne=-5 must be >= 0"),
        ({"vote": {"weights": {"A": float("nan")}}}, r"weights: A=nan must be a finite number"),
        ({"pseudo": {"sweep": [0.5, 2]}}, r"sweep: 2 must be a number in \[0, 1\]"),
    ],
)
def test_bad_training_values_are_named_before_anything_runs(section, match):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for step, values in section.items():
        config["train"][step] = config["train"].get(step, {}) | values
    with pytest.raises(InputError, match=match):
        check_config(config)


def test_every_section_and_top_level_option_is_checked_at_load():
    """Values only the dataclasses bound (the schema states none) stop the load too."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for change, match in [
        ({"train": {**config["train"], "seeds": [0, -1]}}, r"^train.seeds: seed=-1 must be >= 0"),
        ({"shards": 0}, r"^config: shards=0 must be >= 1 and finite$"),
        ({"extract": {**config["extract"], "recipe": "x"}}, r"^extract.recipe must be one of"),
    ]:
        with pytest.raises(InputError, match=match):
            check_config({**config, **change})
    for stage in ("faces", "visual", "audio", "acoustic", "asr", "text"):
        extract = {**config["extract"], stage: {"workers": -1}}
        with pytest.raises(InputError, match=rf"^extract.{stage}: workers=-1 must be >= 0"):
            check_config({**config, "extract": extract})
    check_config({k: v for k, v in config.items() if k != "extract"})  # absent: the defaults


def dry_run(tmp_path, *args):
    """`snakemake -n` of the repo's Snakefile, `tmp_path` its working directory."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
         "-d", str(tmp_path), "-n", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_snakefile_refuses_a_bad_threshold_at_load(tmp_path):
    """The whole config is checked when the Snakefile loads: one line, no traceback, and
    nothing read or written (no inventory, no demo data)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("results: out\ntrain:\n  pseudo:\n    thresholds: {sad: 1.5}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
         "-d", str(tmp_path), "-n", "--configfile", str(REPO / "config.yaml"), str(bad)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "mersemi: error: train.pseudo: thresholds: sad=1.5" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake") == ["bad.yaml"]


@pytest.mark.parametrize(
    ("stage", "values", "match"),
    [
        ("acoustic", {"chunk_seconds": float("inf")}, "chunk_seconds=inf must be > 0 and finite"),
        ("visual", {"batch_size": 0}, "extract.visual: batch_size=0 must be >= 1"),
        ("asr", {"ctc_weight": 1.5}, r"ctc_weight=1.5 must be \[0, 1\]"),
        ("faces", {"scale_factor": 1.0}, r"scale_factor=1.0 must be > 1"),
    ],
)
def test_bad_extraction_values_are_named_before_anything_runs(stage, values, match):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["extract"][stage] = config["extract"][stage] | values
    with pytest.raises(InputError, match=match):
        check_config(config)


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


def test_overrides_are_typed_as_a_config_file_types_them():
    """Snakemake reads nested --config scalars as strings; they get the config file's types."""
    overrides = parse_config([
        'train={"finetune": {"lr": 0.01, "epochs": 3}, "pseudo": {"sweep": [0.5, 0.9]}}',
        'data={"demo": false, "test_dir": null, "labeled_dir": "2024-01-01", "label_csv": ""}',
        "results=null",
    ])  # fmt: skip
    assert overrides["train"]["finetune"] == {"lr": "0.01", "epochs": "3"}  # the cause
    config = copy.deepcopy(overrides)
    config["train"]["finetune"]["dropout"] = "0.5"  # from a config file: a string stays one
    config["data"]["unlabeled_dir"] = "u"
    typed_overrides(config, overrides)
    assert config["train"] == {
        "finetune": {"lr": 0.01, "epochs": 3, "dropout": "0.5"},
        "pseudo": {"sweep": [0.5, 0.9]},
    }
    assert config["data"] == {"demo": False, "test_dir": None, "labeled_dir": "2024-01-01",
                              "label_csv": "", "unlabeled_dir": "u"}  # fmt: skip
    assert config["results"] is None
    # only values that are still the override's raw string change
    config = {"train": {"finetune": {"lr": 0.5}}, "data": "x"}
    typed_overrides(config, overrides)
    assert config == {"train": {"finetune": {"lr": 0.5}}, "data": "x"}


@pytest.mark.parametrize(
    ("override", "error"),
    [
        # accepted: the load gets past every config check, to the (missing) video folder
        ('train={"finetune": {"lr": 0.01}}',
         "labeled video folder resources/demo/labeled: not a directory"),
        ('train={"finetune": {"lr": -1}}', "train.finetune: lr=-1 must be > 0 and finite"),
        ("shards=0", "config: shards=0 must be >= 1 and finite"),
    ],
)  # fmt: skip
def test_snakefile_reads_config_overrides_as_a_config_file(tmp_path, override, error):
    proc = dry_run(tmp_path, "--configfile", str(REPO / "config.yaml"),
                   "--config", override, 'data={"demo": false}')  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.splitlines() == [f"mersemi: error: {error}"]
    # nothing written but the results folder's lock (taken before the videos are listed)
    written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    assert written <= {"results", "results/.mersemi.lock"}, written


def mer2024_without_labeled_dir(path):
    config = yaml.safe_load((REPO / "config.mer2024.yaml").read_text())
    del config["data"]["labeled_dir"]
    path.write_text(yaml.safe_dump(config))
    return [path]


def demo_with_recipe_in_capitals(path):
    path.write_text("extract:\n  recipe: MERTOOLS\n")
    return [REPO / "config.yaml", path]


@pytest.mark.parametrize(
    ("write", "error"),
    [
        # the schema states no choice of its own: the recipe's declaration names them
        (demo_with_recipe_in_capitals,
         "extract.recipe must be one of ['mertools', 'mersemi'], got 'MERTOOLS'"),
        (mer2024_without_labeled_dir, "config data: 'labeled_dir' is a required property"),
    ],
)  # fmt: skip
def test_snakefile_names_a_schema_violation_in_one_line(tmp_path, write, error):
    """Key path, value and rule on one line, exit status 2 (bad input), nothing written."""
    configfiles = write(tmp_path / "bad.yaml")
    proc = dry_run(tmp_path, "--configfile", *map(str, configfiles))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"mersemi: error: {error}"]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake") == ["bad.yaml"]


def test_schema_message_names_key_value_and_rule():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    check_schema(config)
    bad = copy.deepcopy(config)
    bad["extract"]["recipe"] = 2024
    del bad["extract"]["visual"]
    with pytest.raises(InputError) as e:
        check_schema(bad)
    assert str(e.value) == "config extract.recipe: 2024 is not of type 'string'"
    assert bad["extract"]["recipe"] == 2024 and "visual" not in bad["extract"]  # unchanged
    del bad["extract"]["recipe"], bad["data"]["labeled_dir"]
    with pytest.raises(InputError, match=r"^config data: 'labeled_dir' is a required property$"):
        check_schema(bad)
    with pytest.raises(InputError, match=r"^config: Additional properties .*'shard' was unexp"):
        check_schema({**config, "shard": 3})
    # a pasted value is shortened, its middle elided
    with pytest.raises(InputError) as e:
        check_schema({**config, "results": ["x" * 10_000]})
    assert str(e.value).startswith("config results: ['xxx") and len(str(e.value)) < 200
    assert str(e.value).endswith("characters) is not of type 'string'")
