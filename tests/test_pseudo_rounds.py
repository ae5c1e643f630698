"""pseudo.agree / min_agree (consensus of several models) and pseudo.rounds / min_new (rounds
of self-training): the defaults select exactly the paper's two-model labels, a three-model
majority by hand, the early-stop rule, a round's pass-through through the CLI and the
rounds' DAG (a dry run)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mersemi.classes import CLASSES
from mersemi.errors import InputError
from mersemi.train.io import predictions_frame, save_checkpoint
from mersemi.train.params import VARIANTS, PseudoParams, parse_params
from mersemi.train.pipeline import run_pseudo
from mersemi.train.rounds import stop_reason
from mersemi.train.selftrain import consensus, select_pseudo
from mersemi.train.vote import probs_of

REPO = Path(__file__).resolve().parents[1]


def _old_select_pseudo(p_mrccl, p_base, thresholds, confidence):
    """The two-model rule as it was written before consensus (the reference)."""
    a, b = p_mrccl.argmax(1), p_base.argmax(1)
    ca, cb = p_mrccl.max(1), p_base.max(1)
    thr = np.asarray(thresholds, dtype=np.float64)[a]
    ok = {"both": (ca >= thr) & (cb >= thr), "mrccl": ca >= thr, "mean": (ca + cb) / 2 >= thr}
    return (a == b) & ok[confidence], a


@pytest.mark.parametrize("confidence", ["both", "mrccl", "mean"])
def test_default_consensus_selects_the_paper_two_model_labels(confidence):
    rng = np.random.default_rng(3)
    pm = rng.dirichlet(np.full(6, 0.2), 4000)
    # the baseline agrees with MR-CCL on about half the rows
    pb = np.where(rng.random((4000, 1)) < 0.5, pm[:, ::-1], rng.dirichlet(np.full(6, 0.2), 4000))
    pb = np.where(rng.random((4000, 1)) < 0.5, pm, pb)
    thr = rng.uniform(0.3, 0.95, 6)
    keep_old, pred_old = _old_select_pseudo(pm, pb, thr, confidence)
    keep_new, pred_new = select_pseudo(pm, pb, thr, confidence)
    assert 100 < keep_old.sum() < 2000  # the case is not trivial
    assert np.array_equal(keep_old, keep_new) and np.array_equal(pred_old, pred_new)
    # run_pseudo on predictions frames with the default params: the same clips and classes
    n = len(pm)
    names = [f"u{i}" for i in range(n)]

    def frame(p):
        return predictions_frame(
            names, ["unlabeled"] * n, np.full(n, -1), np.full(n, -1), {"F": p}, {"F": 1.0},
            n_valid=np.full(n, 3),
        )  # fmt: skip

    pp = parse_params(PseudoParams, {"score": "prob_vote", "confidence": confidence})
    pp.thresholds = dict(zip(CLASSES, thr.tolist(), strict=True))
    fm, fb = frame(pm), frame(pb)
    out, rep = run_pseudo(fm, fb, pp)
    # the reference on the frames' vote probabilities (the pool rows as the frames hold them)
    vm, vb = probs_of(fm, "vote"), probs_of(fb, "vote")
    k, pr = _old_select_pseudo(vm, vb, thr, confidence)
    assert list(out["name"]) == [names[i] for i in np.flatnonzero(k)]
    assert list(out["discrete"]) == [CLASSES[i] for i in pr[k]]
    assert rep["agreement_rate"] == pytest.approx((vm.argmax(1) == vb.argmax(1)).mean())
    assert list(out.columns) == ["name", "discrete", "confidence_mrccl", "confidence_baseline"]


def test_three_models_two_must_agree_by_hand():
    def one_hot(classes, conf):
        p = np.full((len(classes), 6), (1 - conf) / 5)
        p[np.arange(len(classes)), classes] = conf
        return p

    # rows: all agree | mrccl+probe agree, baseline dissents | all differ | base+probe agree
    m = one_hot([0, 1, 2, 3], 0.9)
    b = one_hot([0, 4, 3, 5], 0.8)
    pr = one_hot([0, 1, 4, 5], 0.6)
    agree, label, conf = consensus([m, b, pr], 2, "both")
    assert agree.tolist() == [True, True, False, True]
    assert label.tolist() == [0, 1, 2, 5]  # a row without a majority: MR-CCL's class
    assert conf[[0, 1, 3]] == pytest.approx([0.6, 0.6, 0.6])  # the agreeing models' smallest
    _, _, mean = consensus([m, b, pr], 2, "mean")
    assert mean[[0, 1, 3]] == pytest.approx([(0.9 + 0.8 + 0.6) / 3, 0.75, 0.7])
    _, _, mr = consensus([m, b, pr], 2, "mrccl")
    assert mr[3] == pytest.approx(0.02)  # MR-CCL's probability of the majority's class
    agree3, _, _ = consensus([m, b, pr], 3, "both")
    assert agree3.tolist() == [True, False, False, False]


def test_agree_and_min_agree_are_checked():
    with pytest.raises(InputError, match="strict majority"):
        parse_params(PseudoParams, {"agree": ["mrccl", "baseline"], "min_agree": 1})
    with pytest.raises(InputError, match="distinct"):
        parse_params(PseudoParams, {"agree": ["mrccl", "mrccl"]})
    with pytest.raises(InputError, match="at least one"):
        parse_params(PseudoParams, {"agree": []})
    with pytest.raises(InputError, match="confidence mrccl"):
        parse_params(PseudoParams, {"agree": ["baseline", "probe"], "confidence": "mrccl"})
    p = parse_params(PseudoParams, {"agree": ["mrccl", "baseline", "probe"], "min_agree": 2})
    assert p.needed == 2 and parse_params(PseudoParams, {}).needed == 2
    with pytest.raises(InputError, match="--probe"):
        run_pseudo(pd.DataFrame(), pd.DataFrame(), p)


def test_stop_reason():
    assert stop_reason(100, 100, 0, False) is None  # min_new 0: never stops
    assert stop_reason(100, 10, 0, False) is None
    assert stop_reason(100, 149, 50, False) is not None  # 49 new < 50
    assert stop_reason(100, 150, 50, False) is None
    assert stop_reason(100, 500, 50, True) == "an earlier round stopped"


def test_a_round_below_min_new_passes_its_step_through(tmp_path):
    from mersemi.cli import main

    save_checkpoint({"kind": "mrccl", "seed": 0}, tmp_path / "step2.pt")
    (tmp_path / "step2.csv").write_text("name,split\nu0,unlabeled\n")
    (tmp_path / "step2.json").write_text(json.dumps({"kind": "mrccl", "cv": {"waf": 0.5}}))
    for name, count in (("a1", 120), ("a2", 130)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"selected": {"count": count}}))
    out = {k: tmp_path / f"step3.{k}" for k in ("pt", "csv", "json")}
    args = ["train", "finetune", "--acoustic", "x", "--visual", "x", "--text", "x",
            "--manifest", "x", "--init", str(tmp_path / "step2.pt"), "--pseudo", "x",
            "--audit", str(tmp_path / "a2.json"), "--prev-audit", str(tmp_path / "a1.json"),
            "--prev-predictions", str(tmp_path / "step2.csv"),
            "--prev-metrics", str(tmp_path / "step2.json"), "--min-new", "20",
            "--out-checkpoint", str(out["pt"]), "--out-predictions", str(out["csv"]),
            "--out-metrics", str(out["json"]), "--params", '{"step": 2}']  # fmt: skip
    assert main(args) in (0, None)
    assert out["pt"].read_bytes() == (tmp_path / "step2.pt").read_bytes()
    assert out["csv"].read_text() == (tmp_path / "step2.csv").read_text()
    m = json.loads(out["json"].read_text())
    assert m["stopped_early"] is True and m["cv"] == {"waf": 0.5}
    assert m["pseudo_labels_round"] == 130 and m["pseudo_labels_previous_round"] == 120
    # the round after it passes through too, whatever its count
    (tmp_path / "a3.json").write_text(json.dumps({"selected": {"count": 900}}))
    o4 = {k: tmp_path / f"step4.{k}" for k in ("pt", "csv", "json")}
    swap = {"--init": out["pt"], "--audit": tmp_path / "a3.json",
            "--prev-audit": tmp_path / "a2.json", "--prev-predictions": out["csv"],
            "--prev-metrics": out["json"], "--out-checkpoint": o4["pt"],
            "--out-predictions": o4["csv"], "--out-metrics": o4["json"]}  # fmt: skip
    args2 = list(args)
    for flag, value in swap.items():
        args2[args2.index(flag) + 1] = str(value)
    assert main(args2) in (0, None)
    assert json.loads(o4["json"].read_text())["stopped_because"] == "an earlier round stopped"
    # rounds.json of the three rounds
    summary = tmp_path / "rounds.json"
    argv = ["train", "rounds", "--out", str(summary)]
    for a, m in (("a1", "step2.json"), ("a2", "step3.json"), ("a3", "step4.json")):
        argv += ["--audit", str(tmp_path / f"{a}.json"), "--metrics", str(tmp_path / m)]
    (tmp_path / "a1.json").write_text(
        json.dumps({"pool": 1000, "agreement_rate": 0.5, "selected": {"count": 120,
                    "per_class": {}, "precision": 0.9}})
    )  # fmt: skip
    for a in ("a2", "a3"):
        d = json.loads((tmp_path / f"{a}.json").read_text())
        d |= {"pool": 1000, "agreement_rate": 0.6, "selected": {**d["selected"], "per_class": {}}}
        (tmp_path / f"{a}.json").write_text(json.dumps(d))
    assert main(argv) in (0, None)
    rows = json.loads(summary.read_text())["rounds"]
    assert [r["count"] for r in rows] == [120, 130, 900]
    assert [r["stopped_early"] for r in rows] == [False, True, True]
    assert rows[0]["share"] == 0.12 and rows[0]["precision"] == 0.9 and rows[0]["cv_waf"] == 0.5


def test_rounds_and_the_probe_in_the_plan(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["train"]["pseudo"] = {
        **(config["train"].get("pseudo") or {}),
        "rounds": 3, "min_new": 5, "agree": ["mrccl", "baseline", "probe"], "min_agree": 2,
    }  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--configfile", str(tmp_path / "config.yaml"), "--directory", str(tmp_path),
           "-n", "-p", "--cores", "1", "submission", "ablations", "report", "plots"]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    jobs = {j.split(":", 1)[0] for j in out.split("\nrule ")[1:]}
    assert {"pseudo_labels_r2", "pseudo_labels_r3", "finetune_step3", "finetune_step4"} <= jobs
    lines = out.splitlines()
    step4 = [x for x in lines if "--out-checkpoint results/train/full/step4/model.pt" in x]
    assert len(step4) == 1 and "--init results/train/full/step3/model.pt" in step4[0]
    assert "--pseudo results/train/full/pseudo_r3/labels.csv" in step4[0]
    assert "--prev-audit results/train/full/pseudo_r2/audit.json" in step4[0]
    assert "--min-new 5" in step4[0] and '"step":2' in step4[0]
    r2 = [x for x in lines if "--out results/train/full/pseudo_r2/labels.csv" in x]
    assert len(r2) == 1 and "--mrccl results/train/full/step2/vote/predictions.csv" in r2[0]
    assert "--probe results/train/probe/predictions.csv" in r2[0]
    pseudo1 = [x for x in lines if "--out results/train/full/pseudo/labels.csv" in x]
    assert "--probe results/train/probe/predictions.csv" in pseudo1[0]
    table = next(x for x in lines if "mersemi train ablations" in x)
    assert "train/full/step4/vote/metrics.json" in table
    assert "train/no_pseudo/step2/vote/metrics.json" in table
    assert "results/train/no_pseudo/step3" not in out
    assert "cp results/train/full/step4/vote/submission.csv" in out
    rounds = next(x for x in lines if "--out results/train/full/rounds.json" in x)
    for r, path in enumerate(("pseudo", "pseudo_r2", "pseudo_r3"), start=1):
        assert f"--audit results/train/full/{path}/audit.json" in rounds
        assert f"--metrics results/train/full/step{r + 1}/metrics.json" in rounds
    assert "results/train/no_pseudo/rounds.json" not in out
    # the report's final scores are the submission's step, and it tables the rounds
    report = next(x for x in lines if "mersemi report" in x)
    assert "--stage 'MR-CCL step 4 (voted)=results/train/full/step4/vote/metrics.json'" in report
    assert "--final 'MR-CCL step 4 (voted)'" in report
    assert "--rounds results/train/full/rounds.json" in report
    assert "plots confusion --metrics results/train/full/step4/vote/metrics.json" in out


def test_round_two_end_to_end_with_the_probe(store, tmp_path):
    """Step 1, the probe and the baseline vote (2 of 3), step 2, round 2's labels from step 2,
    then step 3 from step 2 (trained with min_new 0; passed through above the new count)."""
    from helpers.train_store import SMALL
    from helpers.train_store import feature_args as feat

    from mersemi.cli import main

    def run(*argv):
        assert main([*map(str, argv)]) == 0

    o = tmp_path
    cvp = json.dumps({**SMALL, "epochs": 1, "folds": 3, "oversample_target": 20})
    base = json.dumps({"hidden": 8, "epochs": 1, "folds": 3, "progress": False})
    run(
        "train",
        "baseline",
        *feat(store),
        "--out-checkpoint",
        o / "b.pt",
        "--out-predictions",
        o / "b.csv",
        "--out-metrics",
        o / "b.json",
        "--params",
        base,
    )
    run(
        "train",
        "probe",
        *feat(store),
        "--out-predictions",
        o / "p.csv",
        "--out-metrics",
        o / "p.json",
        "--params",
        json.dumps({"folds": 3}),
    )
    run(
        "train",
        "finetune",
        *feat(store),
        "--out-checkpoint",
        o / "s1.pt",
        "--out-predictions",
        o / "s1.csv",
        "--out-metrics",
        o / "s1.json",
        "--params",
        cvp,
    )
    pp = json.dumps({"thresholds": dict.fromkeys(CLASSES, 0.0), "include_test": False,
                     "agree": ["mrccl", "baseline", "probe"], "min_agree": 2})  # fmt: skip

    def pseudo(pred, name):
        run("train", "pseudo", "--mrccl", pred, "--baseline", o / "b.csv", "--probe",
            o / "p.csv", "--out", o / f"{name}.csv", "--out-audit", o / f"{name}.json",
            "--params", pp)  # fmt: skip
        return json.loads((o / f"{name}.json").read_text())

    a1 = pseudo(o / "s1.csv", "r1")
    labels = pd.read_csv(o / "r1.csv")
    assert len(labels) == a1["selected"]["count"] > 0 and a1["models"][2] == "probe"
    assert "confidence_probe" in labels.columns and a1["min_agree"] == 2
    run("train", "finetune", *feat(store), "--step", "2", "--init", o / "s1.pt", "--pseudo",
        o / "r1.csv", "--out-checkpoint", o / "s2.pt", "--out-predictions", o / "s2.csv",
        "--out-metrics", o / "s2.json", "--params", cvp)  # fmt: skip
    a2 = pseudo(o / "s2.csv", "r2")

    def step3(min_new, tag):
        run("train", "finetune", *feat(store), "--step", "2", "--init", o / "s2.pt",
            "--pseudo", o / "r2.csv", "--audit", o / "r2.json", "--prev-audit", o / "r1.json",
            "--prev-predictions", o / "s2.csv", "--prev-metrics", o / "s2.json",
            "--min-new", min_new, "--out-checkpoint", o / f"s3{tag}.pt",
            "--out-predictions", o / f"s3{tag}.csv", "--out-metrics", o / f"s3{tag}.json",
            "--params", cvp)  # fmt: skip
        return json.loads((o / f"s3{tag}.json").read_text())

    m3 = step3(0, "a")
    assert m3["stopped_early"] is False and m3["pseudo_labels"] == a2["selected"]["count"]
    assert m3["pseudo_labels_previous_round"] == a1["selected"]["count"]
    assert (o / "s3a.csv").read_bytes() != (o / "s2.csv").read_bytes()  # trained
    new = a2["selected"]["count"] - a1["selected"]["count"]
    m3b = step3(new + 1, "b")
    assert m3b["stopped_early"] is True
    assert (o / "s3b.csv").read_bytes() == (o / "s2.csv").read_bytes()


def test_adding_a_round_to_a_finished_run_trains_that_round_only(tmp_path):
    """pseudo.rounds 1 -> 2 on a finished run: round 2's pseudo labels and step 3 for each
    variant with pseudo labels, then what reads the last step; round 1 and step 2 stay."""
    from helpers.done_run import mark_done, planned

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    mark_done(tmp_path, tmp_path / "config.yaml")
    config["train"]["pseudo"] = {**(config["train"].get("pseudo") or {}), "rounds": 2}
    (tmp_path / "rounds2.yaml").write_text(yaml.safe_dump(config))
    jobs, _ = planned(tmp_path, tmp_path / "rounds2.yaml")
    n = len([v for v in VARIANTS if v != "no_pseudo"])
    assert jobs == {"pseudo_labels_r2": n, "finetune_step3": n, "vote": n, "pseudo_rounds": n,
                    "ablations": 1, "submission": 1, "report": 1, "plots": 1,
                    "all": 1}  # fmt: skip
    # min_new is the rounds' own: round 2's step only
    config["train"]["pseudo"]["min_new"] = 3
    (tmp_path / "min_new.yaml").write_text(yaml.safe_dump(config))
    jobs, _ = planned(tmp_path, tmp_path / "min_new.yaml")
    assert "pseudo_labels" not in jobs and "finetune_step2" not in jobs
