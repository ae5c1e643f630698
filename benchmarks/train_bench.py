"""Training benchmark on the synthetic feature benchmark (CPU): baseline vs MR-CCL, Table 1.

Runs in-process (the data is read once): the MER2024 attention baseline; contrastive
pretraining with and without NEE; then for each variant step 1 -> pseudo labels (agreement
with the baseline) -> step 2; and writes JSON with CV/test WAF of every row, pseudo-label
counts with their precision against the hidden truth, pretraining throughput and timings.

    .venv/bin/python benchmarks/train_bench.py                 # default: 20000 unlabeled clips
    .venv/bin/python benchmarks/train_bench.py --n-unlabeled 2000 --epochs 3   # quicker

The model sizes and epochs are scaled down from the paper's so the whole run fits in about
half an hour on 2 shared CPU cores; flags scale them back up.
"""

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from mersemi.synth import SynthConfig, make_synth
from mersemi.train.data import load_dataset
from mersemi.train.params import (
    BaselineParams,
    FinetuneParams,
    PretrainParams,
    PseudoParams,
    parse_params,
    step2_defaults,
)
from mersemi.train.pipeline import run_baseline, run_finetune, run_pretrain, run_pseudo

log = logging.getLogger("train_bench")
VARIANTS = ("full", "no_pretrain", "no_nee", "no_pseudo", "no_oversample")
LABELS = {
    "baseline": "MER2024 baseline (attention)",
    "full": "MR-CCL + self-training (full)",
    "no_pretrain": "w/o contrastive pretraining",
    "no_nee": "w/o NEE",
    "no_pseudo": "w/o pseudo labels",
    "no_oversample": "w/o oversampling",
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data",
        default="benchmarks/results/train_bench_data",
        help="synthetic benchmark folder (written if absent)",
    )
    ap.add_argument("--n-unlabeled", type=int, default=SynthConfig.n_unlabeled)
    ap.add_argument("--out", default="benchmarks/results/train_bench.json")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--pretrain-epochs", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=8, help="per fine-tuning step (at most)")
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--baseline-hidden", type=int, default=64)
    ap.add_argument("--baseline-epochs", type=int, default=15)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(
        level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variant(s) {sorted(unknown)}")

    data = Path(args.data)
    if not (data / "manifest.csv").exists():
        make_synth(data, SynthConfig(seed=args.seed, n_unlabeled=args.n_unlabeled))
    t0 = time.perf_counter()
    ds = load_dataset(
        data / "acoustic.h5", data / "visual.h5", data / "text.h5", data / "manifest.csv"
    )
    truth = pd.concat(
        [pd.read_csv(data / "unlabeled_truth.csv"), pd.read_csv(data / "test_labels.csv")]
    )
    common = {
        "seed": args.seed,
        "device": "cpu",
        "threads": args.threads,
        "progress": False,
        "batch_size": args.batch_size,
    }
    model = {"hidden": args.hidden, "d_model": args.d_model}
    cv = {"folds": args.folds, "epochs": args.epochs, "patience": args.patience}
    out: dict = {
        "config": {
            **vars(args),
            "cpu_count": os.cpu_count(),
            "clips": len(ds),
            "labeled": int(len(ds.labeled())),
            "pool": int(len(ds.pool())),
        },
        "load_seconds": time.perf_counter() - t0,
        "rows": {},
        "pseudo": {},
        "pretrain": {},
        "seconds": {},
    }

    def save():
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.out).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(out, indent=2) + "\n")
        os.replace(tmp, args.out)

    def row(name, metrics, seconds):
        out["rows"][name] = {
            "label": LABELS[name],
            "cv_waf": metrics["cv"]["waf"],
            "test_waf": metrics["test"]["waf"] if metrics.get("test") else None,
            "cv_accuracy": metrics["cv"]["accuracy"],
            "cv_per_classifier_waf": metrics["cv"]["per_classifier_waf"],
            "fold_best_epochs": [f["best_epoch"] for f in metrics["folds"]],
            "pseudo_labels": metrics.get("pseudo_labels"),
        }
        out["seconds"][name] = seconds
        save()

    t = time.perf_counter()
    bp = parse_params(
        BaselineParams,
        {**common, **cv, "hidden": args.baseline_hidden, "epochs": args.baseline_epochs},
    )
    _, base_df, base_m = run_baseline(ds, bp)
    row("baseline", base_m, time.perf_counter() - t)

    pre = {}
    for nee in sorted({v != "no_nee" for v in variants if v != "no_pretrain"}, reverse=True):
        t = time.perf_counter()
        pp = parse_params(
            PretrainParams, {**common, **model, "nee": nee, "epochs": args.pretrain_epochs}
        )
        pre[nee], stats = run_pretrain(ds, pp)
        key = "nee" if nee else "no_nee"
        out["pretrain"][key] = {
            "clips": stats["clips"],
            "epochs": pp.epochs,
            "clips_per_s": stats["clips_per_s"],
            "seconds": stats["seconds"],
            "history": stats["history"],
        }
        out["seconds"][f"pretrain_{key}"] = time.perf_counter() - t
        save()

    step1_cache = {}
    for v in variants:
        t = time.perf_counter()
        switches = {"nee": v != "no_nee", "oversample": v != "no_oversample"}
        key1 = (switches["nee"], switches["oversample"], v == "no_pretrain")
        ft = {**common, **model, **cv, **switches}
        if key1 not in step1_cache:
            p1 = parse_params(FinetuneParams, {**ft, "step": 1})
            step1_cache[key1] = run_finetune(
                ds, p1, pretrained=None if v == "no_pretrain" else pre[switches["nee"]]
            )
        ck1, df1, m1 = step1_cache[key1]
        out.setdefault("step1", {})[v] = {
            "cv_waf": m1["cv"]["waf"],
            "test_waf": m1["test"]["waf"] if m1["test"] else None,
        }
        pseudo = None
        if v != "no_pseudo":
            pseudo, audit = run_pseudo(df1, base_df, parse_params(PseudoParams, {}), truth)
            out["pseudo"][v] = {
                "count": audit["selected"]["count"],
                "per_class": audit["selected"]["per_class"],
                "precision": audit["selected"]["precision"],
                "agreement_rate": audit["agreement_rate"],
                "pool": audit["pool"],
                "sweep": [
                    {k: s[k] for k in ("threshold", "count", "precision")} for s in audit["sweep"]
                ],
            }
        p2 = parse_params(FinetuneParams, ft, base=step2_defaults())
        _, _, m2 = run_finetune(ds, p2, init=ck1, pseudo=pseudo)
        row(v, m2, time.perf_counter() - t)

    out["table1"] = [
        {
            "method": r["label"],
            "cv_waf": round(100 * r["cv_waf"], 2),
            "test_waf": None if r["test_waf"] is None else round(100 * r["test_waf"], 2),
        }
        for r in out["rows"].values()
    ]
    out["total_seconds"] = time.perf_counter() - t0
    out["params_example"] = asdict(parse_params(FinetuneParams, {**common, **model, **cv}))
    save()
    for r in out["table1"]:
        print(f"{r['method']:<34} CV WAF {r['cv_waf']:6.2f}  test WAF {r['test_waf']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
