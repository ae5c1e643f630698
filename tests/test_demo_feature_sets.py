"""End to end: config.zoo.yaml, the demo with two feature sets per modality, through
`snakemake features feature_benchmark` (every set's merged HDF5 and the feature benchmark,
no MR-CCL training) in a temp dir.

The default demo's three sets plus one more encoder family each (the tiny WavLM, DINOv2 and
BERT of `mersemi models tiny`): six files, each with its modality, dim and family; ASR decodes
once for both text sets; the feature benchmark ranks all six sets and the combination of
`train.features`' three; MR-CCL, the baseline and the vote then train on the three zoo sets.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

from mersemi.demo.tiny.zoo import HIDDEN_SIZE

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# set -> (modality, dim, family recorded in the file's params attr)
SETS = {
    "visual": ("visual", 32, None),
    "acoustic": ("acoustic", 32, "hubert"),
    "text": ("text", 32, "causal"),
    "dinov2": ("visual", HIDDEN_SIZE["dinov2"], "dinov2"),
    "wavlm": ("acoustic", HIDDEN_SIZE["wavlm"], "wavlm"),
    "bert": ("text", HIDDEN_SIZE["bert"], "encoder"),
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("zoo")
    shutil.copy(REPO / "config.zoo.yaml", workdir)
    config = yaml.safe_load((REPO / "config.zoo.yaml").read_text())
    snakefile, targets = str(REPO / "Snakefile"), ["features", "feature_benchmark"]
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", snakefile,
           "--configfile", "config.zoo.yaml", "--cores", "2", *targets]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)
    results = workdir / config["results"]
    if proc.returncode != 0:
        logs = "\n".join(
            f"== {p}\n{p.read_text()[-2000:]}" for p in (results / "logs").rglob("*.log")
        )
        pytest.fail(f"zoo demo failed:\n{proc.stderr[-4000:]}\n{logs}")
    return workdir, config, results, proc.stdout + proc.stderr


def test_the_config_names_the_six_sets_and_trains_on_the_defaults(zoo):
    _, config, _, _ = zoo
    assert list(config["features"]) == list(SETS)
    assert config["train"]["features"] == {m: m for m in ("visual", "acoustic", "text")}
    assert config["data"]["demo"] and config["models"]["tiny"]


def test_every_set_has_its_own_file_with_its_modality_dim_and_family(zoo):
    workdir, _, results, _ = zoo
    names = pd.read_csv(results / "inventory" / "clips.csv")["name"].astype(str)
    digests = set()
    for name, (modality, dim, family) in SETS.items():
        with h5py.File(results / "features" / f"{name}.h5", "r") as f:
            assert f.attrs["modality"] == modality and int(f.attrs["dim"]) == dim, name
            assert f["features"].shape == (len(names), dim), name
            assert sorted(x.decode() if isinstance(x, bytes) else x for x in f["names"][:]) == (
                sorted(names)
            ), name
            assert f["valid"][:].mean() > 0.9, name
            params = json.loads(f.attrs["params"])
            if family:
                assert params["family"] == family, name
            if name in ("dinov2", "wavlm", "bert"):  # the zoo model, from its own folder
                assert f.attrs["model"] == f"resources/tiny_models/zoo/{name}"
                assert (workdir / f.attrs["model"] / "config.json").is_file()
            digests.add(f.attrs["digest"])
    assert len(digests) == len(SETS)  # six files, six contents


def test_asr_decodes_once_for_both_text_sets(zoo):
    _, config, results, log = zoo
    shards = config["shards"]
    # one asr job per shard, whatever the number of text sets; both text sets read its output
    assert len(re.findall(r"^(?:local)?rule asr:$", log, re.M)) == shards, log[-3000:]
    assert len(re.findall(r"^(?:local)?rule text:$", log, re.M)) == 2 * shards
    decoded = (results / "asr").glob("shard-*.csv")
    assert sorted(p.name for p in decoded if re.fullmatch(r"shard-\d+\.csv", p.name)) == [
        f"shard-{k:04d}.csv" for k in range(shards)
    ]


def test_the_feature_benchmark_ranks_every_set_and_the_combination(zoo):
    _, _, results, _ = zoo
    table = json.loads((results / "feature_benchmark" / "table.json").read_text())
    assert set(table["sets"]) == set(SETS)
    ranked = {(r["sets"], r["model"]) for r in table["rows"]}
    for name in SETS:
        assert {(name, "probe"), (name, "baseline")} <= ranked, name
    assert sum("+" in sets for sets, _ in ranked) == 2  # the default combination, both models
    assert (results / "feature_benchmark" / "plot.png").stat().st_size > 0


def test_no_training_ran(zoo):
    """The two targets stop at the features and their benchmark: no MR-CCL training, and the
    zoo's models are written by the one tiny_models job."""
    _, _, results, log = zoo
    assert not (results / "train").exists()
    assert len(re.findall(r"^(?:local)?rule tiny_models:$", log, re.M)) == 1
    models = json.loads((results.parent / "resources/tiny_models/models.json").read_text())
    assert {k: v["modality"] for k, v in models["zoo"].items()} == {
        s: m for s, (m, _, _) in SETS.items() if s in ("dinov2", "wavlm", "bert")
    }


def test_mrccl_baseline_and_vote_train_on_the_zoo_sets(zoo, tmp_path):
    """Training on any dims: MR-CCL step 1 (no pretraining), the baseline and the vote on the
    three zoo sets (DINOv2, WavLM, BERT), whose dims differ from the default sets'."""
    workdir, _, results, _ = zoo
    feats = [
        a
        for m, s in (("visual", "dinov2"), ("acoustic", "wavlm"), ("text", "bert"))
        for a in (f"--{m}", str(results / "features" / f"{s}.h5"))
    ]
    manifest = ["--manifest", str(results / "manifest.csv")]
    small = {"folds": 2, "epochs": 2, "batch_size": 16, "device": "cpu", "progress": False}

    def train(*args):
        cmd = [sys.executable, "-m", "mersemi", "train", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
        assert proc.returncode == 0, proc.stderr[-3000:]

    out = {k: tmp_path / f"{k}.csv" for k in ("mrccl", "base", "vote")}
    train("finetune", *feats, *manifest, "--out-checkpoint", str(tmp_path / "m.pt"),
          "--out-predictions", str(out["mrccl"]), "--out-metrics", str(tmp_path / "m.json"),
          "--params", json.dumps({**small, "pretrained": False, "step": 1}))  # fmt: skip
    train("baseline", *feats, *manifest, "--out-checkpoint", str(tmp_path / "b.pt"),
          "--out-predictions", str(out["base"]),
          "--out-metrics", str(tmp_path / "b.json"), "--params", json.dumps(small))  # fmt: skip
    train("vote", "--predictions", str(out["mrccl"]), "--out-predictions", str(out["vote"]),
          "--out-metrics", str(tmp_path / "v.json"),
          "--out-submission", str(tmp_path / "s.csv"),
          "--out-status", str(tmp_path / "st.csv"))  # fmt: skip
    n = len(pd.read_csv(results / "manifest.csv"))
    for key in ("mrccl", "base", "vote"):
        assert len(pd.read_csv(out[key])) == n, key
    assert 0 <= json.loads((tmp_path / "v.json").read_text())["cv"]["waf"] <= 1
