"""Training benchmark on `mersemi synth` features (CPU), over seeds: Table 1 with mean ± std.

Per seed (the seed sets the folds, initialisation and batches; the features are the same):
- the MER2024 attention baseline (ours) and, with --mertools, MERTools' own code on the same
  folds (benchmarks/mertools_run.py, in a subprocess);
- contrastive pretraining with and without NEE;
- per variant (full and the paper's ablations): step 1 -> pseudo labels (agreement with the
  baseline) -> step 2, each scored with the paper's vote weights and with weights fitted on
  out-of-fold predictions (nested over folds);
- a pseudo-label audit of every confidence definition (count, share, precision per class and a
  threshold sweep) on the full variant's step 1, against the pool's hidden labels.

    python benchmarks/train_bench.py --seeds 0,1,2 --mertools /tmp/mertools/MER2024
    python benchmarks/train_bench.py --merge a.json b.json --out all.json   # seeds run apart
    python benchmarks/train_bench.py --data /tmp/spk --profile speakers --variants full \
        --selections paper,balanced,precision          # issue 22: the second synth profile

Every seed also runs the linear probe (Table 1's second row); every MR-CCL row has the
paper's, the fitted and the auto vote.

Sizes are scaled down for 2 shared CPU cores, each a departure from the defaults the
workflow uses: MR-CCL hidden = d_model = 32, 2 pretraining epochs, fine-tuning lr 1e-3 (step
2: 5e-4, the paper's 2:1 ratio) with at most 20 epochs and patience 3 (the defaults, lr 1e-4
with 40 / 5, take about 5x the epochs), baselines (ours and MERTools') 15 epochs instead of
100 (their best epoch on synth is 2-4); flags scale them back up. Seeds can run as separate
processes and be merged with --merge.
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mersemi.demo.synth import SynthConfig, make_synth
from mersemi.demo.synth_speakers import SpeakerSynthConfig, make_speaker_synth
from mersemi.report.table1 import TABLE1_COLS
from mersemi.train.cli import vote_both
from mersemi.train.data import load_dataset
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
from mersemi.train.selftrain import SCORES, SELECTIONS

log = logging.getLogger("train_bench")
VARIANTS = ("full", "no_pretrain", "no_nee", "no_pseudo", "no_oversample")
LABELS = {
    "mertools": "MERTools' own code (attention)",
    "baseline": "MER2024 baseline (attention, ours)",
    "probe": "Linear probe (logistic regression)",
    "full": "MR-CCL + self-training (full)",
    "no_pretrain": "w/o contrastive pretraining",
    "no_nee": "w/o NEE",
    "no_pseudo": "w/o pseudo labels",
    "no_oversample": "w/o oversampling",
    **{f"full_{s}": f"full, pseudo-label score {s}" for s in SCORES},
    **{f"full_sel_{s}": f"full, pseudo.selection {s}" for s in SELECTIONS},
}
COLS = (
    *TABLE1_COLS,
    "step1_cv_waf",
    "step1_test_waf",
    "step1_cv_waf_auto",
    "step1_test_waf_auto",
)


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
    _, probe_m = run_probe(ds, parse_params(ProbeParams, {"seed": seed, "folds": args.folds}))
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
            res["pseudo"][v] = _audit_row(audit)
        if v == "full":
            res["scores"] = {
                s: _audit_row(
                    run_pseudo(df1, base_df, parse_params(PseudoParams, {"score": s}), truth)[1]
                )
                for s in SCORES
            }
        # step 2 keeps the paper's step-1 : step-2 learning-rate ratio (1e-4 : 5e-5)
        ft2 = {**ft, "lr": ft["lr"] / 2} if "lr" in ft else ft
        p2 = parse_finetune({**ft2, "step": 2})
        _, df2, m2 = run_finetune(ds, p2, init=ck1, pseudo=pseudo)
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
            for sel in [x for x in args.selections.split(",") if x]:
                t = time.perf_counter()
                pp = {"score": args.score, "selection": sel, "budget": args.budget}
                pl, a = run_pseudo(df1, base_df, parse_params(PseudoParams, pp), truth)
                res.setdefault("selections", {})[sel] = {
                    **_audit_row(a),
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
    return res


def _audit_row(a: dict) -> dict:
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


def summarise(seeds: dict) -> dict:
    """Table 1: mean and std (over seeds, ddof 1) of every column of every row."""
    names = [n for n in LABELS if any(n in s["rows"] for s in seeds.values())]
    table = []
    seeds = {k: s for k, s in seeds.items() if s.get("rows")}
    for n in names:
        row = {"key": n, "method": LABELS[n], "seeds": 0}
        for c in COLS:
            vals = [s["rows"][n][c] for s in seeds.values() if s["rows"].get(n, {}).get(c)]
            if vals:
                row["seeds"] = max(row["seeds"], len(vals))
                row[c] = round(100 * float(np.mean(vals)), 2)
                row[c + "_std"] = (
                    round(100 * float(np.std(vals, ddof=1)), 2) if len(vals) > 1 else 0
                )
        table.append(row)
    pseudo = {}
    for s in SCORES:
        got = [x["scores"][s] for x in seeds.values() if "scores" in x]
        if got:
            pseudo[s] = {
                k: [
                    float(np.mean([g[k] or 0 for g in got])),
                    float(np.std([g[k] or 0 for g in got])),
                ]
                for k in ("count", "share", "precision")
            }
    sel = {}
    for k in SELECTIONS:
        got = [x["selections"][k] for x in seeds.values() if k in x.get("selections", {})]
        if got:
            sel[k] = {
                m: [
                    float(np.mean([g[m] or 0 for g in got])),
                    float(np.std([g[m] or 0 for g in got], ddof=1)) if len(got) > 1 else 0.0,
                ]
                for m in ("count", "share", "precision")
            }
    gains = {}
    for k in ("full", "no_pseudo", *[f"full_sel_{s}" for s in SELECTIONS]):
        d = [
            s["rows"][k]["cv_waf"] - s["rows"][k]["step1_cv_waf"]
            for s in seeds.values()
            if k in s["rows"]
        ]
        if d:
            gains[f"{k}_step2_minus_step1_cv"] = [
                100 * float(np.mean(d)),
                100 * float(np.std(d, ddof=1)) if len(d) > 1 else 0.0,
            ]
        d = [
            s["rows"][k]["test_waf"] - s["rows"][k]["step1_test_waf"]
            for s in seeds.values()
            if k in s["rows"] and s["rows"][k].get("test_waf") is not None
        ]
        if d:
            gains[f"{k}_step2_minus_step1_test"] = [
                100 * float(np.mean(d)),
                100 * float(np.std(d, ddof=1)) if len(d) > 1 else 0.0,
            ]
    d = [
        s["rows"]["full"]["cv_waf"] - s["rows"]["baseline"]["cv_waf"]
        for s in seeds.values()
        if "full" in s["rows"]
    ]
    if d:
        gains["full_minus_baseline_cv"] = [
            100 * float(np.mean(d)),
            100 * float(np.std(d, ddof=1)) if len(d) > 1 else 0.0,
        ]
    return {"table1": table, "pseudo_scores": pseudo, "selections": sel, "gains": gains}


def markdown(summary: dict) -> str:
    def cell(r, c):
        return f"{r[c]:.2f} ± {r[c + '_std']:.2f}" if c in r else "–"

    lines = [
        "| Method | CV WAF | Test WAF | CV WAF (fitted vote) | Test WAF (fitted vote) "
        "| CV WAF (auto vote) | Test WAF (auto vote) | step 1 CV | step 1 test | seeds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["table1"]:
        cells = " | ".join(cell(r, c) for c in COLS[:8])
        lines.append(f"| {r['method']} | {cells} | {r['seeds']} |")
    if summary.get("selections"):
        lines += [
            "",
            "| pseudo.selection | count | share | precision | step 2 − step 1, CV | test |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        g = summary["gains"]
        for k, v in summary["selections"].items():

            def gain(part, k=k):
                x = g.get(f"full_sel_{k}_step2_minus_step1_{part}")
                return f"{x[0]:+.2f} ± {x[1]:.2f}" if x else "–"

            lines.append(
                f"| {k} | {v['count'][0]:.0f} ± {v['count'][1]:.0f} | {100 * v['share'][0]:.1f} % "
                f"| {100 * v['precision'][0]:.1f} ± {100 * v['precision'][1]:.1f} % "
                f"| {gain('cv')} | {gain('test')} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="benchmarks/results/train_bench_data")
    ap.add_argument("--n-unlabeled", type=int, default=SynthConfig.n_unlabeled)
    ap.add_argument(
        "--profile",
        choices=("default", "speakers"),
        default="default",
        help="synth profile written to --data when it holds no manifest",
    )
    ap.add_argument(
        "--selections",
        default="",
        help="also run the full variant's step 2 with these pseudo.selection options",
    )
    ap.add_argument("--budget", type=float, default=PseudoParams.budget, help="balanced")
    ap.add_argument("--out", default="benchmarks/results/train_bench.json")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--mertools", help="MERTools' MER2024 folder: run its own code too")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the step's default")
    ap.add_argument("--epochs", type=int, default=20, help="at most, per fine-tuning step")
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3, help="step 1 (step 2: half)")
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--baseline-hidden", type=int, default=128)
    ap.add_argument("--baseline-epochs", type=int, default=15)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--score", default=PseudoParams.score, choices=SCORES)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument(
        "--extra-scores",
        default="",
        help="also run the full variant's step 2 with pseudo labels of these scores",
    )
    ap.add_argument("--merge", nargs="+", help="merge the seeds of these outputs into --out")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    out: dict = {"config": vars(args), "seeds": {}}

    def save():
        out.update(summarise(out["seeds"]))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.out).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(out, indent=2) + "\n")
        os.replace(tmp, args.out)
        Path(args.out).with_suffix(".md").write_text(markdown(out))

    if args.merge:
        for f in args.merge:
            got = json.loads(Path(f).read_text())
            out["seeds"].update(got["seeds"])
            out.setdefault("configs", []).append(got["config"])
        save()
        print(markdown(out))
        return 0

    data = Path(args.data)
    if not (data / "manifest.csv").exists():
        if args.profile == "speakers":
            make_speaker_synth(data, SpeakerSynthConfig(seed=0, n_unlabeled=args.n_unlabeled))
        else:
            make_synth(data, SynthConfig(seed=0, n_unlabeled=args.n_unlabeled))
    ds = load_dataset(
        data / "acoustic.h5", data / "visual.h5", data / "text.h5", data / "manifest.csv"
    )
    truth = pd.concat(
        [pd.read_csv(data / "unlabeled_truth.csv"), pd.read_csv(data / "test_labels.csv")]
    )
    out["config"].update(
        {"cpu_count": os.cpu_count(), "clips": len(ds), "pool": int(len(ds.pool()))}
    )
    for seed in [int(s) for s in args.seeds.split(",") if s]:
        out["seeds"][str(seed)] = {}
        run_seed(args, ds, truth, seed, out["seeds"][str(seed)], save)
        save()
    print(markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
