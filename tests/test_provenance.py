"""Every feature file and metrics JSON says which code, options, packages and device made it."""

import json
import re

import h5py
import pandas as pd
from helpers.tiny_models import tiny_model, write_shard

from mersemi import __version__
from mersemi.extract.cli import run_stage
from mersemi.provenance import CHECKOUT, params_hash, provenance
from mersemi.train import io


def check(prov: dict, params: dict | None) -> None:
    assert prov["mersemi"] == __version__
    assert prov["params_sha256"] == params_hash(params)
    assert prov["packages"]["torch"] and prov["packages"]["transformers"]
    assert prov["device"] == "cpu" and prov["created"]
    if (CHECKOUT / ".git").exists():  # a checkout: the commit, and whether src/ was edited
        assert re.fullmatch(r"[0-9a-f]{40}", prov["git_commit"])
        assert isinstance(prov["git_dirty"], bool)


def test_params_hash_is_canonical():
    assert params_hash({"a": 1, "b": [1, 2]}) == params_hash({"b": [1, 2], "a": 1})
    assert params_hash({"a": 1}) != params_hash({"a": 2})
    assert provenance()["params_sha256"] is None


def test_a_feature_file_records_its_provenance(tmp_path):
    shard = write_shard(tmp_path / "shard.csv", ["a"])
    transcripts = tmp_path / "asr.csv"
    pd.DataFrame({"name": ["a"], "text": ["你好"], "source": "asr"}).to_csv(transcripts)
    out = tmp_path / "text.h5"
    run_stage("text", {"shard": str(shard), "out": str(out), "transcripts": str(transcripts),
                       "params": {"model_dir": str(tiny_model("llm"))}})  # fmt: skip
    with h5py.File(out) as f:
        prov = json.loads(f.attrs["provenance"])
        params = json.loads(f.attrs["params"])
    check(prov, params)


def test_a_metrics_json_records_its_provenance(tmp_path):
    metrics = {"params": {"lr": 1e-4, "epochs": 40}, "cv": {"waf": 0.5}}
    io.write_json(metrics, tmp_path / "m.json")
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["cv"] == {"waf": 0.5}
    check(m["provenance"], metrics["params"])
