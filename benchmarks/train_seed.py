"""One seed of benchmarks/train_bench.py: the baselines, pretraining, every variant's two
fine-tuning steps with their votes, and the pseudo-label audits (run from benchmarks/, as the
script's sibling)."""

import json
import subprocess
import sys
import time
from pathlib import Path

from train_options import option_rows
from train_rounds import run_rounds_and_agree
from train_table import COLS

from mersemi.train.cli import vote_both
from mersemi.train.folds import stratified_folds
from mersemi.train.params import (
    BaselineParams,
    PretrainParams,
    ProbeParams,
    PseudoParams,
    VoteParams,
    parse_finetune,
    parse_params,
)
from mersemi.train.pipeline import run_baseline, run_finetune, run_pretrain, run_pseudo
from mersemi.train.probe import run_probe
from mersemi.train.selftrain import SCORES


def _m(metrics, part):
    return metrics[part]["waf"] if metrics.get(part) else None


def run_seed(args, ds, truth, seed: int, res: dict, save) -> dict:
    res.update({"rows": {}, "pseudo": {}, "pretrain": {}, "seconds": {}})
    common = {"seed": seed, "device": "cpu", "threads": args.threads, "progress": False}
    model = {"hidden": args.hidden, "d_model": args.d_model}
    cv = {"folds": args.folds}
    for k in ("epochs", "patience", "lr"):
        if getattr(args, k) is not None:
            cv[k] = getattr(args, k)
    if args.batch_size:
        common["batch_size"] = args.batch_size

    def timed(name, t):
        res["seconds"][name] = time.perf_counter() - t
        save()

    t = time.perf_counter()
    bp = parse_params(
        BaselineParams,
        {
            **common,
            "folds": args.folds,
            "hidden": args.baseline_hidden,
            "epochs": args.baseline_epochs,
        },
    )
    _, base_df, base_m = run_baseline(ds, bp)
    res["rows"]["baseline"] = {
        "cv_waf": _m(base_m, "cv"),
        "test_waf": _m(base_m, "test"),
        "best_epochs": [f["best_epoch"] for f in base_m["folds"]],
    }
    timed("baseline", t)

    t = time.perf_counter()
    probe_df, probe_m = run_probe(
        ds, parse_params(ProbeParams, {"seed": seed, "folds": args.folds})
    )
    res["rows"]["probe"] = {"cv_waf": _m(probe_m, "cv"), "test_waf": _m(probe_m, "test")}
    timed("probe", t)

    if args.mertools:
        t = time.perf_counter()
        lab = ds.labeled()
        folds = [
            [str(ds.names[lab][i]) for i in v]
            for v in stratified_folds(ds.labels[lab], args.folds, seed)
        ]
        work = Path(args.out).parent / "mertools"
        work.mkdir(parents=True, exist_ok=True)
        (work / f"folds_{seed}.json").write_text(json.dumps(folds))
        out = work / f"seed{seed}.json"
        cmd = [
            sys.executable, str(Path(__file__).with_name("mertools_run.py")),
            "--mertools", args.mertools, "--data", args.data,
            "--folds", str(work / f"folds_{seed}.json"), "--work", str(work / "inputs"),
            "--out", str(out), "--epochs", str(args.baseline_epochs),
            "--hidden", str(args.baseline_hidden), "--dropout", str(bp.dropout),
            "--lr", str(bp.lr), "--seed", str(seed),
        ]  # fmt: skip
        with open(work / f"seed{seed}.log", "w") as fh:
            subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT)
        mt = json.loads(out.read_text())
        res["rows"]["mertools"] = {"cv_waf": mt["cv_waf"], "test_waf": mt["test_waf"]}
        timed("mertools", t)

    variants = [v for v in args.variants.split(",") if v]
    pre = {}
    for nee in sorted({v != "no_nee" for v in variants if v != "no_pretrain"}, reverse=True):
        t = time.perf_counter()
        pp = parse_params(
            PretrainParams, {**common, **model, "nee": nee, "epochs": args.pretrain_epochs}
        )
        pre[nee], stats = run_pretrain(ds, pp)
        res["pretrain"]["nee" if nee else "no_nee"] = {
            k: stats[k] for k in ("clips", "clips_per_s", "seconds", "history")
        }
        timed(f"pretrain_{'nee' if nee else 'no_nee'}", t)

    vote = parse_params(VoteParams, {})
    step1 = {}
    for v in variants:
        t = time.perf_counter()
        sw = {"nee": v != "no_nee", "oversample": v != "no_oversample"}
        key1 = (sw["nee"], sw["oversample"], v == "no_pretrain")
        ft = {**common, **model, **cv, **sw}
        if key1 not in step1:
            p1 = parse_finetune({**ft, "step": 1})
            step1[key1] = run_finetune(
                ds, p1, pretrained=None if v == "no_pretrain" else pre[sw["nee"]]
            )
        ck1, df1, m1 = step1[key1]
        pseudo = None
        if v != "no_pseudo":
            pseudo, audit = run_pseudo(
                df1,
                base_df,
                parse_params(PseudoParams, {"score": args.score, "selection": "paper"}),
                truth,
            )
            res["pseudo"][v] = audit_row(audit)
        if v == "full":
            res["scores"] = {
                s: audit_row(
                    run_pseudo(df1, base_df, parse_params(PseudoParams, {"score": s}), truth)[1]
                )
                for s in SCORES
            }
        # step 2 keeps the paper's step-1 : step-2 learning-rate ratio (1e-4 : 5e-5)
        ft2 = {**ft, "lr": ft["lr"] / 2} if "lr" in ft else ft
        p2 = parse_finetune({**ft2, "step": 2})
        ck2, df2, m2 = run_finetune(ds, p2, init=ck1, pseudo=pseudo)
        _, v2 = vote_both(df2, vote)
        _, v1 = vote_both(df1, vote)
        res["rows"][v] = {
            "cv_waf": _m(v2["votes"]["paper"], "cv"),
            "test_waf": _m(v2["votes"]["paper"], "test"),
            "cv_waf_fitted": _m(v2["votes"]["fitted"], "cv"),
            "test_waf_fitted": _m(v2["votes"]["fitted"], "test"),
            "cv_waf_auto": _m(v2["votes"]["auto"], "cv"),
            "test_waf_auto": _m(v2["votes"]["auto"], "test"),
            "auto_choice": v2["votes"]["auto"]["use"],
            "fitted_weights": v2["votes"]["fitted"]["weights"],
            "step1_cv_waf": _m(v1["votes"]["paper"], "cv"),
            "step1_test_waf": _m(v1["votes"]["paper"], "test"),
            "step1_cv_waf_auto": _m(v1["votes"]["auto"], "cv"),
            "step1_test_waf_auto": _m(v1["votes"]["auto"], "test"),
            "step1_cv_per_classifier_waf": m1["cv"]["per_classifier_waf"],
            "step1_test_per_classifier_waf": (m1.get("test") or {}).get("per_classifier_waf"),
            "cv_per_classifier_waf": m2["cv"]["per_classifier_waf"],
            "step1_best_epochs": [f["best_epoch"] for f in m1["folds"]],
            "step2_best_epochs": [f["best_epoch"] for f in m2["folds"]],
            "pseudo_labels": m2.get("pseudo_labels"),
        }
        timed(v, t)
        if v == "full":
            option_rows(args, ds, truth, res, timed, df2, ft, ft2, pre[sw["nee"]], base_df)
            for sel in [x for x in args.selections.split(",") if x]:
                t = time.perf_counter()
                pp = {"score": args.score, "selection": sel, "budget": args.budget}
                pl, a = run_pseudo(df1, base_df, parse_params(PseudoParams, pp), truth)
                res.setdefault("selections", {})[sel] = {
                    **audit_row(a),
                    "selection": a.get("selection"),
                }
                if sel == "paper":  # the full row itself (same score, same selection)
                    res["rows"]["full_sel_paper"] = dict(res["rows"]["full"])
                    timed("full_sel_paper", t)
                    continue
                _, df2s, m2s = run_finetune(ds, p2, init=ck1, pseudo=pl)
                _, v2s = vote_both(df2s, vote)
                res["rows"][f"full_sel_{sel}"] = {
                    **{k: res["rows"]["full"][k] for k in COLS if k.startswith("step1_")},
                    "cv_waf": _m(v2s["votes"]["paper"], "cv"),
                    "test_waf": _m(v2s["votes"]["paper"], "test"),
                    "cv_waf_fitted": _m(v2s["votes"]["fitted"], "cv"),
                    "test_waf_fitted": _m(v2s["votes"]["fitted"], "test"),
                    "cv_waf_auto": _m(v2s["votes"]["auto"], "cv"),
                    "test_waf_auto": _m(v2s["votes"]["auto"], "test"),
                    "pseudo_labels": m2s.get("pseudo_labels"),
                    "step2_best_epochs": [f["best_epoch"] for f in m2s["folds"]],
                }
                timed(f"full_sel_{sel}", t)
            for score in [x for x in args.extra_scores.split(",") if x]:
                t = time.perf_counter()
                pl, _ = run_pseudo(
                    df1, base_df, parse_params(PseudoParams, {"score": score}), truth
                )
                _, df2s, m2s = run_finetune(ds, p2, init=ck1, pseudo=pl)
                _, v2s = vote_both(df2s, vote)
                res["rows"][f"full_{score}"] = {
                    **{k: res["rows"]["full"][k] for k in ("step1_cv_waf", "step1_test_waf")},
                    "cv_waf": _m(v2s["votes"]["paper"], "cv"),
                    "test_waf": _m(v2s["votes"]["paper"], "test"),
                    "cv_waf_fitted": _m(v2s["votes"]["fitted"], "cv"),
                    "test_waf_fitted": _m(v2s["votes"]["fitted"], "test"),
                    "pseudo_labels": m2s.get("pseudo_labels"),
                }
                timed(f"full_{score}", t)
            # issue 30: rows full_round2 .. (pseudo.rounds) and full_agree (pseudo.agree)
            run_rounds_and_agree(
                args, ds, truth, res, (base_df, probe_df), step1[key1], (ck2, df2, m2), p2,
                vote, timed,
            )  # fmt: skip
    return res


def audit_row(a: dict) -> dict:
    sel = a["selected"]
    return {
        "count": sel["count"],
        "share": sel["count"] / max(a["pool"], 1),
        "precision": sel.get("precision"),
        "per_class": sel["per_class"],
        "precision_per_class": sel.get("precision_per_class"),
        "agreement_rate": a["agreement_rate"],
        "pool": a["pool"],
        "score": a.get("score"),
        "sweep": [{k: s.get(k) for k in ("threshold", "count", "precision")} for s in a["sweep"]],
    }
