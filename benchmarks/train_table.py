"""Table 1 of benchmarks/train_bench.py over seeds: its rows and columns, the mean ± std
summary and its Markdown (run from benchmarks/, as the script's sibling)."""

import numpy as np

from mersemi.report.table1 import TABLE1_COLS
from mersemi.train.selftrain import SCORES, SELECTIONS

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
    "full_prior_em": "full, vote.prior em (re-vote)",
    "full_moddrop": "full, finetune.modality_dropout",
    # issue 30 (train_rounds.py): the full variant after round r, and with pseudo.agree
    **{f"full_round{r}": f"full, pseudo.rounds {r}" for r in range(2, 10)},
    "full_agree": "full, pseudo.agree (the row's agree, min_agree)",
}
OPTION_ROWS = ("full_prior_em", "full_moddrop")  # issue 30: each against the full row
COLS = (
    *TABLE1_COLS,
    "step1_cv_waf",
    "step1_test_waf",
    "step1_cv_waf_auto",
    "step1_test_waf_auto",
)


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
    for k in OPTION_ROWS:
        for part in ("cv", "test"):
            d = [
                s["rows"][k][f"{part}_waf"] - s["rows"]["full"][f"{part}_waf"]
                for s in seeds.values()
                if k in s["rows"] and s["rows"][k].get(f"{part}_waf") is not None
            ]
            if d:
                gains[f"{k}_minus_full_{part}"] = [
                    100 * float(np.mean(d)),
                    100 * float(np.std(d, ddof=1)) if len(d) > 1 else 0.0,
                ]
    got = [s["rows"]["full_prior_em"] for s in seeds.values() if "full_prior_em" in s["rows"]]
    priors = {
        k: {c: float(np.mean([g[k][c] for g in got])) for c in got[0][k]}
        for k in ("prior_labeled", "prior_estimated", "prior_pool_true")
    } if got else {}  # fmt: skip
    return {
        "table1": table, "pseudo_scores": pseudo, "selections": sel, "gains": gains,
        "priors": priors,
    }  # fmt: skip


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
    g = summary.get("gains", {})
    opts = [
        (k, part) for k in OPTION_ROWS for part in ("cv", "test") if f"{k}_minus_full_{part}" in g
    ]
    if opts:
        lines += ["", "| option row | against full | WAF change (pt) |", "|---|---|---:|"]
        for k, part in opts:
            x = g[f"{k}_minus_full_{part}"]
            lines.append(f"| {LABELS[k]} | {part} | {x[0]:+.2f} ± {x[1]:.2f} |")
    pr = summary.get("priors")
    if pr:
        lines += [
            "",
            "| class | labeled prior | pool prior, EM | pool, true |",
            "|---|---:|---:|---:|",
        ]
        for c in pr["prior_labeled"]:
            cells = [pr[k][c] for k in ("prior_labeled", "prior_estimated", "prior_pool_true")]
            lines.append(f"| {c} | " + " | ".join(f"{100 * x:.1f} %" for x in cells) + " |")
    return "\n".join(lines) + "\n"
