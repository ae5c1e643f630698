"""`mersemi train feature-bench`: probe and baseline per feature set and per combination,
ranked, on the workflow's folds; and `mersemi plots benchmark` of its JSON."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mersemi.classes import CLASSES
from mersemi.cli import main
from mersemi.store import FeatureMeta, write_features
from mersemi.train.data import load_dataset
from mersemi.train.featurebench import Sets, parse_set
from mersemi.train.models import AttentionBaseline
from mersemi.train.params import BaselineParams, ProbeParams, parse_params
from mersemi.train.pipeline import run_baseline
from mersemi.train.probe import run_probe

PNG = b"\x89PNG"
PROBE = {"folds": 3, "C": 1.0}
BASE = {"folds": 3, "epochs": 15, "lr": 1e-2, "dropout": 0.1, "hidden": 8, "batch_size": 32,
        "progress": False, "device": "cpu", "threads": 1}  # fmt: skip
PARAMS = {"seeds": [0, 1], "probe": PROBE, "baseline": BASE}


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """60 labeled, 12 unlabeled, 12 test clips; per modality a set carrying the class (`sig`)
    and, for acoustic, one of pure noise."""
    d = tmp_path_factory.mktemp("fbench")
    rng = np.random.default_rng(3)
    n_train, n_unl, n_test = 60, 12, 12
    n = n_train + n_unl + n_test
    y = np.arange(n) % 6
    split = ["train"] * n_train + ["unlabeled"] * n_unl + ["test"] * n_test
    names = [f"c{i:03d}" for i in range(n)]
    means = rng.standard_normal((6, 6)) * 3

    def write(name, modality, x):
        meta = FeatureMeta(modality, f"toy-{name}", "-", "mean", x.shape[1])
        write_features(d / f"{name}.h5", meta, names, x, np.ones(n, bool))

    write(
        "a_sig", "acoustic", means[y] @ rng.standard_normal((6, 10)) + rng.standard_normal((n, 10))
    )
    write("a_noise", "acoustic", rng.standard_normal((n, 7)))
    write("v_sig", "visual", means[y] + rng.standard_normal((n, 6)))
    write("t_sig", "text", means[y] @ rng.standard_normal((6, 5)) + rng.standard_normal((n, 5)))
    labels = [CLASSES[c] if s != "unlabeled" else "" for c, s in zip(y, split, strict=True)]
    man = pd.DataFrame({"name": names, "path": "", "split": split, "label": labels, "shard": 0})
    man.to_csv(d / "manifest.csv", index=False)
    man.iloc[:-1].to_csv(d / "short.csv", index=False)
    man.assign(label=man["label"].where(man["split"] == "train", "")).to_csv(
        d / "no_test_labels.csv", index=False
    )
    return d


def _argv(d, o, *extra, params=PARAMS):
    return [
        "train", "feature-bench",
        "--set", f"a_sig=acoustic:{d / 'a_sig.h5'}",
        "--set", f"a_noise=acoustic:{d / 'a_noise.h5'}",
        "--set", f"v_sig=visual:{d / 'v_sig.h5'}",
        "--set", f"t_sig=text:{d / 't_sig.h5'}",
        "--manifest", str(d / "manifest.csv"),
        "--out-md", str(o / "b.md"), "--out-csv", str(o / "b.csv"),
        "--out-json", str(o / "b.json"), "--params", json.dumps(params), *extra,
    ]  # fmt: skip


def test_ranked_table_seeds_and_combo(sets, tmp_path):
    o = tmp_path
    assert main(_argv(sets, o, "--combo", "t_sig+a_sig+v_sig")) == 0
    doc = json.loads((o / "b.json").read_text())
    df = pd.DataFrame(doc["rows"])
    # 4 sets + 1 combination, each with the probe and the baseline
    assert len(df) == 10 and set(df["model"]) == {"probe", "baseline"}
    assert list(df["modality"].drop_duplicates()) == [
        "acoustic", "visual", "text", "acoustic+visual+text"
    ]  # fmt: skip
    ac = df[df["modality"] == "acoustic"]
    for model in ("probe", "baseline"):
        r = ac[ac["model"] == model].set_index("sets")
        assert r.loc["a_sig", "cv_waf"] > r.loc["a_noise", "cv_waf"]
        assert r.loc["a_sig", "rank"] < r.loc["a_noise", "rank"]
    assert list(ac["rank"]) == [1, 2, 3, 4] and (ac["cv_waf"].diff().dropna() <= 0).all()
    combo = df[df["sets"] == "a_sig+v_sig+t_sig"]  # in modality order, whatever was given
    assert len(combo) == 2 and set(combo["dims"]) == {"10+6+5"}
    assert (df["seeds"] == 2).all() and all(len(v) == 2 for v in df["cv_waf_seeds"])
    assert doc["sets"]["a_noise"]["dim"] == 7 and doc["sets"]["v_sig"]["model"] == "toy-v_sig"

    # mean and std over the seeds: the probe called directly, seed by seed
    ds = load_dataset(*(sets / f for f in ("a_sig.h5", "v_sig.h5", "t_sig.h5")),
                      sets / "manifest.csv")  # fmt: skip
    one = Sets([parse_set(f"a_sig=acoustic:{sets / 'a_sig.h5'}")], sets / "manifest.csv")
    uni = one.dataset(("a_sig",))
    # the labeled clips (train and test), in the files' order
    assert list(uni.names) == [n for n, y in zip(ds.names, ds.labels, strict=True) if y >= 0]
    assert len(uni) == 72 and uni.dims == {"acoustic": 10}
    wafs = [
        100 * run_probe(uni, parse_params(ProbeParams, {**PROBE, "seed": s}))[1]["cv"]["waf"]
        for s in (0, 1)
    ]
    r = ac[(ac["model"] == "probe") & (ac["sets"] == "a_sig")].iloc[0]
    assert r["cv_waf_seeds"] == pytest.approx(wafs)
    assert r["cv_waf"] == pytest.approx(np.mean(wafs))
    assert r["cv_waf_std"] == pytest.approx(np.std(wafs, ddof=1))
    # the combination's probe is the workflow's probe on the three files
    tri = [
        100 * run_probe(ds, parse_params(ProbeParams, {**PROBE, "seed": s}))[1]["cv"]["waf"]
        for s in (0, 1)
    ]
    assert combo.set_index("model").loc["probe", "cv_waf_seeds"] == pytest.approx(tri)
    # ... and its baseline the workflow's baseline (same folds, same seeds, same model)
    base = [
        100 * run_baseline(ds, parse_params(BaselineParams, {**BASE, "seed": s}))[2]["cv"]["waf"]
        for s in (0, 1)
    ]
    assert combo.set_index("model").loc["baseline", "cv_waf_seeds"] == pytest.approx(base)

    csv = pd.read_csv(o / "b.csv")
    assert list(csv["sets"]) == list(df["sets"]) and csv["cv_waf_seeds"].str.count(";").eq(1).all()
    md = (o / "b.md").read_text()
    assert md.startswith("| Rank | Set(s) |") and md.count("\n") == 12 and " ± " in md

    out = o / "bench.png"
    assert main(["plots", "benchmark", "--table", str(o / "b.json"), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == PNG and out.stat().st_size > 5000


@pytest.mark.parametrize(
    "change, message",
    [
        (["--set", "x=audio:{d}/a_sig.h5"], "unknown modality 'audio'"),
        (["--set", "x={d}/a_sig.h5"], "expected NAME=MODALITY:PATH"),
        (["--set", "x=visual:{d}/a_sig.h5"], "holds 'acoustic', expected 'visual'"),
        (["--set", "a_sig=acoustic:{d}/a_sig.h5"], "given twice"),
        (["--combo", "a_sig+a_noise"], "distinct modalities"),
        (["--combo", "a_sig+zz"], "unknown set(s) ['zz']"),
        (["--manifest", "{d}/short.csv"], "1 feature row(s) not in the manifest ['c083']"),
    ],
)
def test_bad_inputs_are_one_line_errors(sets, tmp_path, capsys, change, message):
    argv = _argv(sets, tmp_path, *[a.format(d=sets) for a in change])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "b.json").exists()


def test_bad_params(sets, tmp_path, capsys):
    for params, message in (
        ({"seeds": []}, "seeds is empty"),
        ({"seed": 1}, "unknown key(s) ['seed']"),
        ({"baseline": {"epoch": 2}}, "--params baseline: unknown key(s) ['epoch']"),
        ({"models": ["mrccl"]}, "models"),
    ):
        assert main(_argv(sets, tmp_path, params=params)) == 2
        assert message in capsys.readouterr().err


def test_one_seed_without_test_labels(sets, tmp_path):
    argv = _argv(sets, tmp_path, "--manifest", str(sets / "no_test_labels.csv"),
                 params={"models": ["probe"], "probe": PROBE})  # fmt: skip
    assert main(argv) == 0
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert len(rows) == 4 and all(r["test_waf"] is None and r["seeds"] == 1 for r in rows)
    assert all(r["cv_waf_std"] == 0 and len(r["cv_waf_seeds"]) == 1 for r in rows)
    md = (tmp_path / "b.md").read_text()
    assert "| – |" in md and " ± " not in md


def test_attention_baseline_on_one_modality():
    """Unimodal, MERTools' attention model has one encoder and one attention weight per clip."""
    model = AttentionBaseline({"visual": 6}, hidden=8)
    out = model({"visual": torch.randn(5, 6)})
    assert out["logits"]["B"].shape == (5, len(CLASSES)) and out["attention"].shape == (5, 1)
    assert list(model.encoders) == ["visual"]


def test_plot_needs_the_table(tmp_path, capsys):
    assert main(["plots", "benchmark", "--out", str(tmp_path / "x.png")]) == 2
    assert "--table" in capsys.readouterr().err
