"""mersemi train ... end to end on a tiny feature store: files, formats, determinism."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.train_store import BLIND, DIMS, SMALL
from helpers.train_store import feature_args as _feat

from mersemi.classes import CLASSES
from mersemi.cli import main
from mersemi.provenance import params_hash
from mersemi.train.data import load_dataset


def _run(*argv):
    assert main([*map(str, argv)]) == 0


def test_dataset_zeroes_invalid_rows(store):
    ds = load_dataset(*[store / f"{m}.h5" for m in DIMS], store / "manifest.csv")
    i = ds.rows(["c000"])[0]
    assert not ds.valid["visual"][i] and np.all(ds.features["visual"][i] == 0)
    assert len(ds.labeled()) == 90 and len(ds.pool()) == 60 and len(ds.test_labeled()) == 20


def test_pretraining_reads_splits_not_labels(store, tmp_path):
    """The workflow pretrains from the manifest without labels (so a label fix does not rerun
    it): the checkpoint equals the one pretrained from the labeled manifest."""
    man = pd.read_csv(store / "manifest.csv", keep_default_na=False)
    man.assign(label="").to_csv(tmp_path / "splits.csv", index=False)
    states = []
    for manifest in (store / "manifest.csv", tmp_path / "splits.csv"):
        argv = [*_feat(store)[:-1], manifest, "--out-checkpoint", tmp_path / "p.pt"]
        _run("train", "pretrain", *argv, "--out-metrics", tmp_path / "p.json",
             "--params", json.dumps({**SMALL, "epochs": 1}))  # fmt: skip
        states.append(torch.load(tmp_path / "p.pt", weights_only=True)["state"])
        assert json.loads((tmp_path / "p.json").read_text())["clips"] == 150
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_full_chain(store, tmp_path):
    o = tmp_path
    pre = json.dumps({**SMALL, "epochs": 2})
    cvp = json.dumps({**SMALL, "epochs": 2, "folds": 3, "oversample_target": 20})
    _run(
        "train",
        "pretrain",
        *_feat(store),
        "--out-checkpoint",
        o / "pre.pt",
        "--out-metrics",
        o / "pre.json",
        "--params",
        pre,
    )
    assert json.loads((o / "pre.json").read_text())["clips_per_s"] > 0
    _run(
        "train",
        "baseline",
        *_feat(store),
        "--out-checkpoint",
        o / "b.pt",
        "--out-predictions",
        o / "b.csv",
        "--out-metrics",
        o / "b.json",
        "--params",
        json.dumps({"hidden": 8, "epochs": 2, "folds": 3, "progress": False}),
    )
    _run(
        "train",
        "finetune",
        *_feat(store),
        "--pretrained",
        o / "pre.pt",
        "--out-checkpoint",
        o / "s1.pt",
        "--out-predictions",
        o / "s1.csv",
        "--out-metrics",
        o / "s1.json",
        "--params",
        cvp,
    )
    # Loose thresholds so that the tiny run yields pseudo labels.
    _run(
        "train",
        "pseudo",
        "--mrccl",
        o / "s1.csv",
        "--baseline",
        o / "b.csv",
        "--out",
        o / "pseudo.csv",
        "--out-audit",
        o / "audit.json",
        "--out-sweep",
        o / "sw.csv",
        "--params",
        json.dumps({"thresholds": dict.fromkeys(CLASSES, 0.0), "include_test": False}),
    )
    pseudo = pd.read_csv(o / "pseudo.csv")
    audit = json.loads((o / "audit.json").read_text())
    assert audit["pool"] == 39 and len(pseudo) == audit["selected"]["count"] > 0
    assert audit["excluded_no_valid_modality"] == 1 and f"c{BLIND:03d}" not in set(pseudo["name"])
    assert set(pseudo["name"]) <= {f"c{i:03d}" for i in range(90, 130)}  # unlabeled only
    _run(
        "train",
        "finetune",
        *_feat(store),
        "--step",
        "2",
        "--init",
        o / "s1.pt",
        "--pseudo",
        o / "pseudo.csv",
        "--out-checkpoint",
        o / "s2.pt",
        "--out-predictions",
        o / "s2.csv",
        "--out-metrics",
        o / "s2.json",
        "--params",
        cvp,
    )
    m2 = json.loads((o / "s2.json").read_text())
    assert m2["provenance"]["params_sha256"] == params_hash(m2["params"])
    assert m2["params"]["lr"] == 5e-5 and m2["params"]["oversample_target"] == 20
    assert m2["initialised_from"] == "step1" and m2["pseudo_labels"] == len(pseudo)
    assert all(f["train_rows"] >= 60 + len(pseudo) for f in m2["folds"])
    for f in m2["folds"]:  # the class distribution the report shows, after oversampling
        assert sum(f["train_counts"].values()) == f["train_rows"]
        # oversample_scope "dataset": the target 20 is over the 90 labeled clips, so a
        # training fold (60 of them) duplicates up to round(20 * 60 / 90) = 13
        assert min(f["train_counts"][c] for c in ("sad", "worried", "surprise")) >= 13

    ck = torch.load(o / "s2.pt", weights_only=True)
    assert ck["kind"] == "mrccl" and len(ck["folds"]) == 3
    assert all(isinstance(v, torch.Tensor) for v in ck["folds"][0].values())

    preds = pd.read_csv(o / "s2.csv", keep_default_na=False)
    assert len(preds) == 150
    for clf in ("A", "V", "T", "F", "vote"):
        p = preds[[f"prob_{clf}_{c}" for c in CLASSES]].to_numpy()
        assert np.allclose(p.sum(1), 1.0, atol=1e-5)
    lab = preds[preds["split"] == "train"]
    assert sorted(lab["fold"].unique()) == [0, 1, 2]  # every labeled clip predicted out of fold

    _run(
        "train",
        "vote",
        "--predictions",
        o / "s2.csv",
        "--out-predictions",
        o / "v.csv",
        "--out-metrics",
        o / "v.json",
        "--out-submission",
        o / "submission.csv",
        "--out-status",
        o / "status.csv",
        "--params",
        json.dumps({"weights": {"F": 1.0}}),
    )
    sub = pd.read_csv(o / "submission.csv")
    assert list(sub.columns) == ["name", "discrete"]
    assert set(sub["name"]) == {f"c{i:03d}" for i in range(90, 150)}  # unlabeled + test
    # the clip without any valid feature is flagged beside the challenge file
    status = pd.read_csv(o / "status.csv")
    assert list(status["name"]) == list(sub["name"])
    assert dict(zip(status["name"], status["status"], strict=True)) == {
        n: "no_valid_modality" if n == f"c{BLIND:03d}" else "ok" for n in sub["name"]
    }
    v = pd.read_csv(o / "v.csv", keep_default_na=False)
    f_pred = v[[f"prob_F_{c}" for c in CLASSES]].to_numpy().argmax(1)
    assert (v["pred"] == [CLASSES[i] for i in f_pred]).all()
    vm = json.loads((o / "v.json").read_text())
    assert vm["cv"]["waf"] == pytest.approx(vm["cv"]["per_classifier_waf"]["F"])
    assert vm["test"]["n"] == 20

    _run(
        "train",
        "ablations",
        "--row",
        f"Baseline={o / 'b.json'}",
        "--row",
        f"Full={o / 's2.json'}",
        "--out-csv",
        o / "t.csv",
        "--out-md",
        o / "t.md",
        "--out-json",
        o / "t.json",
    )
    table = pd.read_csv(o / "t.csv")
    assert table["method"].tolist() == ["Baseline", "Full"]
    assert table["cv_waf"].iloc[1] == pytest.approx(round(100 * m2["cv"]["waf"], 2))
    assert "| Full |" in (o / "t.md").read_text()
    # Both votes are in the vote metrics; Table 1 over seeds: a repeated label adds a seed.
    assert set(vm["votes"]) == {"paper", "fitted", "auto"} and vm["use"] == "paper"
    assert vm["votes"]["auto"]["use"] in ("paper", "fitted")
    assert set(vm["votes"]["fitted"]["fold_weights"]) == {"0", "1", "2"}
    _run(
        "train",
        "ablations",
        *("--row", f"Full={o / 'v.json'}", "--row", f"Full={o / 's2.json'}"),
        *("--out-csv", o / "t2.csv", "--out-md", o / "t2.md", "--out-json", o / "t2.json"),
    )
    t2 = pd.read_csv(o / "t2.csv").iloc[0]
    cvs = [100 * vm["votes"]["paper"]["cv"]["waf"], 100 * m2["cv"]["waf"]]
    assert t2["seeds"] == 2 and t2["cv_waf"] == pytest.approx(np.mean(cvs), abs=0.01)
    assert t2["cv_waf_std"] == pytest.approx(np.std(cvs, ddof=1), abs=0.01)
    assert t2["cv_waf_fitted"] == pytest.approx(100 * vm["votes"]["fitted"]["cv"]["waf"], abs=0.01)

    # Every metrics JSON and audit of the chain names the options that made it (provenance).
    for name in ("pre", "b", "s1", "s2", "v", "audit"):
        m = json.loads((o / f"{name}.json").read_text())
        assert m["provenance"]["params_sha256"] == params_hash(m["params"]), name


def test_finetune_is_deterministic_and_ablation_switches(store, tmp_path):
    params = json.dumps({**SMALL, "epochs": 1, "folds": 2, "nee": False, "oversample": False})
    outs = []
    for k in range(2):
        _run(
            "train",
            "finetune",
            *_feat(store),
            "--out-checkpoint",
            tmp_path / f"{k}.pt",
            "--out-predictions",
            tmp_path / f"{k}.csv",
            "--out-metrics",
            tmp_path / f"{k}.json",
            "--params",
            params,
        )
        outs.append(pd.read_csv(tmp_path / f"{k}.csv"))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    m = json.loads((tmp_path / "0.json").read_text())
    assert m["initialised_from"] == "scratch"
    assert all(f["train_rows"] == 45 for f in m["folds"])  # no oversampling


def test_bad_params_and_inputs_are_one_line_errors(store, tmp_path, capsys):
    argv = [
        "train",
        "finetune",
        *_feat(store),
        "--out-checkpoint",
        str(tmp_path / "x.pt"),
        "--out-predictions",
        str(tmp_path / "x.csv"),
        "--out-metrics",
        str(tmp_path / "x.json"),
    ]
    assert main([*argv, "--params", '{"epoch": 3}']) == 2
    assert "unknown key(s) ['epoch']" in capsys.readouterr().err
    (tmp_path / "p.csv").write_text("name,discrete\nc001,happy\n")
    assert main([*argv, "--pseudo", str(tmp_path / "p.csv"), "--params", '{"epochs": 1}']) == 2
    assert "labeled training clip" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_probe_cli_and_table1_row(store, tmp_path):
    """`train probe` writes a predictions CSV and metrics JSON that Table 1 takes as a row;
    the blind clip gets the fold-averaged prediction of zero vectors, flagged by n_valid."""
    o = tmp_path
    _run("train", "probe", *_feat(store), "--out-predictions", o / "p.csv",
         "--out-metrics", o / "p.json", "--params", '{"folds": 3, "C": 1.0}')  # fmt: skip
    df = pd.read_csv(o / "p.csv")
    assert len(df) == 150 and (df.fold[df.split == "train"] >= 0).all()
    assert int(df.n_valid[df.name == f"c{BLIND:03d}"].iloc[0]) == 0
    m = json.loads((o / "p.json").read_text())
    assert m["kind"] == "probe" and m["cv"]["waf"] > 0.5 and m["test"]["waf"] > 0.5
    outs = ("--out-csv", o / "t.csv", "--out-md", o / "t.md", "--out-json", o / "t.json")
    _run("train", "ablations", "--row", f"Linear probe={o / 'p.json'}", *outs)
    t = pd.read_csv(o / "t.csv").iloc[0]
    assert t["cv_waf"] == pytest.approx(round(100 * m["cv"]["waf"], 2))
    assert pd.isna(t["cv_waf_auto"])


def test_the_finetune_step_comes_from_the_flag_or_the_params_and_they_agree():
    """The workflow names the step in --params; --step says the same from the command line.
    Either way the step's defaults apply under the given values, and a contradiction stops."""
    from mersemi.errors import InputError
    from mersemi.train.params import job_params, parse_finetune

    assert parse_finetune('{"step": 2}') == parse_finetune("{}", 2)
    assert (parse_finetune('{"step": 2}').lr, parse_finetune("{}").lr) == (5e-5, 1e-4)
    assert parse_finetune('{"step": 2, "lr": 0.1}', 2).oversample_target == 1000
    with pytest.raises(InputError, match="step=2 contradicts --step 1"):
        parse_finetune('{"step": 2}', 1)
    train = {"common": {"seed": 3}, "finetune": {"lr": 0.1}, "step2": {"epochs": 2}}
    assert job_params(train, "step2", variant="no_nee", seed=7) == {
        "seed": 7, "lr": 0.1, "epochs": 2, "step": 2, "nee": False,
    }  # fmt: skip
