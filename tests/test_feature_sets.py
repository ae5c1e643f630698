"""Named feature sets (config `features:`, `train.features`): checked at load; the default is
today's three sets with today's plan and the feature benchmark; adding a set to a finished run
plans that set alone and the feature benchmark over every set (dry runs on a run marked done
with `--touch`, tests/helpers/done_run.py)."""

import copy
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.done_run import mark_done, outputs, planned
from snakemake.utils import validate

from mersemi.configcheck import check_config
from mersemi.errors import InputError
from mersemi.extract.common import stage_section
from mersemi.featuresets import DEFAULT_SETS, benchmark_combos, feature_sets, trained_sets
from mersemi.train.params import job_params

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "src" / "mersemi" / "schemas" / "config.schema.yaml"
MODALITIES = ("visual", "acoustic", "text")


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def with_sets(config: dict, **sets) -> dict:
    """`config` with today's three sets and `sets` added (and train.features, if given)."""
    config = copy.deepcopy(config)
    trained = sets.pop("trained", None)
    config["features"] = {**{m: None for m in MODALITIES}, **sets}
    if trained:
        config["train"]["features"] = trained
    return config


def test_default_sets_are_today_s_three_from_the_extract_sections():
    config = demo_config()
    assert "features" not in config
    sets = feature_sets(config)
    assert list(sets) == list(MODALITIES)
    for m in MODALITIES:
        assert sets[m].modality == m and sets[m].params == stage_section(config["extract"], m)
    assert trained_sets(config, sets) == {m: m for m in MODALITIES}
    # the schema's default is the same three sets, and reads the same sections
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["properties"]["features"]["default"] == DEFAULT_SETS
    validate(config, str(SCHEMA))
    assert feature_sets(config) == sets
    # spelled out, or as bare names, they are the same sets
    assert feature_sets(with_sets(config)) == sets


def test_a_set_s_params_stand_alone_with_the_recipe_filled_in():
    config = with_sets(demo_config(), clip2={"modality": "visual", "params": {"batch_size": 4}})
    assert feature_sets(config)["clip2"].params == {"recipe": "mertools", "batch_size": 4}
    config["extract"]["recipe"] = "mersemi"
    assert feature_sets(config)["clip2"].params["recipe"] == "mersemi"
    config["features"]["clip2"]["params"]["recipe"] = "mertools"  # its own recipe wins
    assert feature_sets(config)["clip2"].params["recipe"] == "mertools"
    check_config(config)


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        ({"a/b": {"modality": "visual"}}, r"^features: set name 'a/b' must be letters"),
        ({"faces": {"modality": "visual"}}, r"^features.faces: faces is a stage's name"),
        ({"clip2": {}}, r"^features.clip2: modality is required"),
        ({"clip2": {"modality": "video"}}, r"^features.clip2: modality must be one of"),
        ({"visual": {"modality": "text"}}, r"^features.visual: modality=text, but a set named"),
        # a set's params are checked by its stage's declarations, as extract.<stage> is
        ({"clip2": {"modality": "visual", "params": {"batch_size": 0}}},
         r"^features.clip2.params: batch_size=0 must be >= 1"),
        ({"w2v": {"modality": "acoustic", "params": {"nope": 1}}},
         r"^features.w2v.params: unknown key\(s\) \['nope'\]"),
        # training reads a set of each modality
        ({"trained": {"visual": "clip2"}}, r"^train.features: visual='clip2' is not a feature"),
        ({"trained": {"text": "acoustic"}},
         r"^train.features: text='acoustic' is a set of modality acoustic, not text$"),
    ],
)  # fmt: skip
def test_bad_sets_are_named_in_one_line_at_load(sets, match):
    with pytest.raises(InputError, match=match):
        check_config(with_sets(demo_config(), **sets))


def test_benchmark_combos_default_to_the_trained_sets_in_modality_order():
    config = with_sets(demo_config(), clip2={"modality": "visual"}, trained={"visual": "clip2"})
    sets = feature_sets(config)
    assert benchmark_combos(config, sets) == [("acoustic", "clip2", "text")]
    config["feature_benchmark"] = {"combos": [["text", "visual"], ["clip2", "acoustic", "text"]]}
    assert benchmark_combos(config, sets) == [("visual", "text"), ("acoustic", "clip2", "text")]
    config["feature_benchmark"] = {"combos": []}
    assert benchmark_combos(config, sets) == []


@pytest.mark.parametrize(
    ("bench", "match"),
    [
        ({"combos": [["visual", "nope", "text"]]},
         r"^feature_benchmark.combos\[0\]: 'nope' not a feature set \(features: visual, "),
        ({"combos": [["acoustic"], ]}, r"^feature_benchmark.combos\[0\]: needs 2 or 3 sets"),
        ({"combos": [["visual", "clip2"]]},
         r"^feature_benchmark.combos\[0\]: needs 2 or 3 sets of distinct modalities, got "
         r"\['visual', 'visual'\]"),
        ({"combos": [["text", "visual"], ["visual", "text"]]},
         r"^feature_benchmark.combos\[1\]: \['visual', 'text'\] is listed twice"),
        ({"combos": ["visual+text"]}, r"^feature_benchmark.combos\[0\]: expected a list of set"),
        ({"models": ["mrccl"]}, r"^feature_benchmark: models: unknown key\(s\) \['mrccl'\]"),
        ({"models": []}, r"^feature_benchmark: models is empty"),
        ({"combo": []}, r"^feature_benchmark: unknown key\(s\) \['combo'\]"),
    ],
)  # fmt: skip
def test_bad_benchmark_combos_are_named_in_one_line_at_load(bench, match):
    config = with_sets(demo_config(), clip2={"modality": "visual"})
    config["feature_benchmark"] = bench
    with pytest.raises(InputError, match=match):
        check_config(config)


@pytest.mark.parametrize(
    ("trained", "error"),
    [
        ({"visual": "clip"}, "train.features: visual='clip' is not a feature set (features: "
                             "visual, acoustic, text)"),
        ({"acoustic": "visual"},
         "train.features: acoustic='visual' is a set of modality visual, not acoustic"),
    ],
)  # fmt: skip
def test_snakefile_refuses_an_unknown_or_wrong_set_for_training(tmp_path, trained, error):
    """One line, exit 2, before anything is read or written."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"train": {**demo_config()["train"], "features": trained}}))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
         "-d", str(tmp_path), "-n", "--configfile", str(REPO / "config.yaml"), str(bad)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"mersemi: error: {error}"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake") == ["bad.yaml"]


# The demo's plan (2 shards), as before feature sets, with the feature benchmark: job counts
# per rule.
DEMO_PLAN = {
    "manifest": 1, "splits": 1, "tiny_models": 1, "check_models": 6, "audio": 2, "faces": 2,
    "acoustic": 2, "asr": 2, "visual": 2, "merge_features": 3, "transcripts": 2, "text": 2,
    "baseline": 1, "finetune_step1": 4, "pretrain": 2, "probe": 1, "vote": 9,
    "finetune_step2": 5, "pseudo_labels": 4, "ablations": 1, "plots": 1, "report": 1,
    "submission": 1, "feature_benchmark": 1, "all": 1,
}  # fmt: skip


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """The demo config's run, marked done (no job runs)."""
    workdir = tmp_path_factory.mktemp("done")
    (workdir / "config.yaml").write_text((REPO / "config.yaml").read_text())
    mark_done(workdir, workdir / "config.yaml")
    return workdir


def write(workdir: Path, name: str, config: dict) -> Path:
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))  # key order is params order
    return path


def test_default_plan_is_today_s(done):
    """Same jobs, paths and commands as before sets, and nothing to do on a finished run."""
    config = done / "config.yaml"
    assert planned(done, config)[0] == {}
    jobs, out = planned(done, config, "--forceall")
    assert jobs == DEMO_PLAN
    assert outputs(out, "merge_features") == [
        f"results/features/{m}.h5" for m in sorted(MODALITIES)
    ]
    checks = ["acoustic", "asr", "audio", "faces", "text", "visual"]
    assert outputs(out, "check_models") == [f"results/checks/{s}.txt" for s in checks]
    assert outputs(out, "visual") == [f"results/features/visual/shard-000{k}.h5" for k in (0, 1)]
    assert '--params \'{"model_dir":"resources/tiny_models/llm","recipe":"mertools"}\'' in out
    # the sets spelled out in the config are the same run
    assert planned(done, write(done, "spelled", with_sets(demo_config())))[0] == {}


def command(out: str, rule: str) -> list[str]:
    """The shell words of a dry run's (one) `rule` job."""
    (block,) = [b for b in re.split(r"\n(?=(?:local)?rule \w+:)", out)
                if re.match(rf"(?:local)?rule {rule}:", b)]  # fmt: skip
    return shlex.split(re.search(r"^Shell command: (.*)$", block, re.M)[1])


def flags(words: list[str], flag: str) -> list[str]:
    return [words[i + 1] for i, w in enumerate(words) if w == flag]


@pytest.mark.parametrize("modality", ["visual", "text"])
def test_adding_a_set_to_a_finished_run_extracts_that_set_only(done, modality):
    """Its model check, its stage on every shard and its merge; no other extraction (a text set
    reads the transcripts there are: no ASR), no training; the feature benchmark (one job over
    every set) and the report, which shows its table."""
    params = {**demo_config()["extract"][modality], "batch_size": 4}
    config = with_sets(demo_config(), extra={"modality": modality, "params": params})
    jobs, out = planned(done, write(done, f"added-{modality}", config))
    assert jobs == {"check_models": 1, modality: 2, "merge_features": 1,
                    "feature_benchmark": 1, "report": 1, "all": 1}  # fmt: skip
    assert outputs(out, "check_models") == [f"results/checks/{modality}/extra.txt"]
    assert outputs(out, modality) == [f"results/features/extra/shard-000{k}.h5" for k in (0, 1)]
    assert outputs(out, "merge_features") == ["results/features/extra.h5"]
    assert '"batch_size":4' in out
    bench = command(out, "feature_benchmark")
    assert f"extra={modality}:results/features/extra.h5" in flags(bench, "--set")
    assert flags(bench, "--combo") == ["acoustic+visual+text"]  # train.features' sets


def test_feature_benchmark_reads_every_set_with_the_train_jobs_params(done):
    """Inputs: every set's merged file and the manifest; `--set` for each, `--combo` for each
    combination listed; `--params`: train.seeds, and the probe's and the baseline's params as
    those jobs merge them."""
    config = with_sets(demo_config(), clip2={"modality": "visual"}, w2v={"modality": "acoustic"})
    config["train"]["seeds"] = [0, 3]
    config["train"]["common"]["threads"] = 2
    config["feature_benchmark"] = {
        "combos": [["w2v", "clip2", "text"], ["visual", "text"]],
        "models": ["baseline"],
    }
    jobs, out = planned(done, write(done, "bench", config), "feature_benchmark")
    assert jobs == {"check_models": 2, "visual": 2, "acoustic": 2, "merge_features": 2,
                    "feature_benchmark": 1}  # fmt: skip
    files = [f"results/features/{s}.h5" for s in ("visual", "acoustic", "text", "clip2", "w2v")]
    (block,) = [b for b in out.split("\n\n") if "rule feature_benchmark:" in b]
    assert re.search(r"^\s+input: (.*)$", block, re.M)[1].split(", ") == [
        *files,
        "results/manifest.csv",
    ]
    assert re.search(r"^\s+output: (.*)$", block, re.M)[1].split(", ") == [
        f"results/feature_benchmark/{f}"
        for f in ("table.md", "table.csv", "table.json", "plot.png")
    ]
    assert "log: results/logs/feature_benchmark.log" in block
    assert "benchmark: results/benchmarks/feature_benchmark.tsv" in block
    assert "gpu=1" in block and "mem_mb=16000" in block and "runtime=240" in block
    bench = command(out, "feature_benchmark")
    modality = {"clip2": "visual", "w2v": "acoustic"}
    assert flags(bench, "--set") == [
        f"{s}={modality.get(s, s)}:results/features/{s}.h5"
        for s in ("visual", "acoustic", "text", "clip2", "w2v")
    ]
    assert flags(bench, "--combo") == ["w2v+clip2+text", "visual+text"]
    assert flags(bench, "--manifest") == ["results/manifest.csv"]
    train = config["train"]
    assert json.loads(flags(bench, "--params")[0]) == {
        "seeds": [0, 3],
        "models": ["baseline"],
        "probe": job_params(train, "probe"),
        "baseline": job_params(train, "baseline"),
    }
    assert json.loads(flags(bench, "--params")[0])["baseline"]["threads"] == 2  # train.common
    assert "mersemi plots benchmark --table results/feature_benchmark/table.json" in out


def test_training_reads_the_set_train_features_names(done):
    config = with_sets(
        demo_config(),
        extra={"modality": "visual", "params": demo_config()["extract"]["visual"]},
        trained={"visual": "extra"},
    )
    jobs, out = planned(done, write(done, "trained", config))
    assert {"faces", "audio", "asr", "transcripts", "acoustic", "text"}.isdisjoint(jobs)
    assert jobs["visual"] == 2 and jobs["merge_features"] == 1 and jobs["baseline"] == 1
    assert "--visual results/features/extra.h5 --text results/features/text.h5" in out
    assert "--visual results/features/visual.h5" not in out
