"""Rounds and consensus of pseudo labels in benchmarks/train_bench.py (issue 30): rows
`full_round2` .. `full_round<N>` (pseudo.rounds N: round r re-selects pseudo labels from step
r's MR-CCL and trains step r + 1 from step r) and `full_agree` (step 2 on the labels of
pseudo.agree / min_agree, e.g. MR-CCL, the baseline and the linear probe, 2 of 3), each with
the pseudo labels' count, share and precision (run from benchmarks/, as the script's sibling).
"""

import time

from mersemi.train.cli import vote_both
from mersemi.train.params import PseudoParams, parse_params
from mersemi.train.pipeline import run_finetune, run_pseudo
from mersemi.train.rounds import stop_reason


def add_args(ap) -> None:
    ap.add_argument(
        "--rounds", type=int, default=1, help="pseudo.rounds: rows full_round2 .. full_roundN"
    )
    ap.add_argument("--min-new", type=int, default=0, help="pseudo.min_new of the rounds")
    ap.add_argument(
        "--agree",
        default="",
        help="pseudo.agree of a full_agree row, e.g. mrccl,baseline,probe (empty: no row)",
    )
    ap.add_argument("--min-agree", type=int, default=0, help="pseudo.min_agree of full_agree")


def _m(metrics, part):
    return metrics[part]["waf"] if metrics.get(part) else None


def _row(res, df, m, audit: dict, extra: dict, vote) -> dict:
    _, v = vote_both(df, vote)
    full = res["rows"]["full"]
    return {
        **{k: full[k] for k in ("step1_cv_waf", "step1_test_waf")},
        "cv_waf": _m(v["votes"]["paper"], "cv"),
        "test_waf": _m(v["votes"]["paper"], "test"),
        "cv_waf_auto": _m(v["votes"]["auto"], "cv"),
        "test_waf_auto": _m(v["votes"]["auto"], "test"),
        "pseudo_labels": audit["count"],
        "pseudo_share": audit["share"],
        "pseudo_precision": audit["precision"],
        "best_epochs": [f["best_epoch"] for f in m["folds"]],
        **extra,
    }


def run_rounds_and_agree(args, ds, truth, res, frames, step1, step2, p2, vote, timed):
    """`frames`: the baseline's and the probe's predictions; `step1`, `step2`: the full
    variant's (checkpoint, predictions, metrics) of steps 1 and 2 (round 1)."""
    from train_seed import audit_row  # (train_seed imports this module)

    base_df, probe_df = frames
    if args.rounds > 1:
        pp = parse_params(PseudoParams, {"score": args.score, "min_new": args.min_new})
        res["rounds"] = {"1": {**res["pseudo"]["full"], "stopped_early": False}}
        (ck, df, m), stopped = step2, False
        prev = res["pseudo"]["full"]["count"]
        for r in range(2, args.rounds + 1):
            t = time.perf_counter()
            labels, a = run_pseudo(df, base_df, pp, truth)
            audit = audit_row(a)
            why = stop_reason(prev, audit["count"], args.min_new, stopped)
            stopped = why is not None
            if not stopped:  # step r + 1 from step r, the step-2 params
                ck, df, m = run_finetune(ds, p2, init=ck, pseudo=labels)
            res["rounds"][str(r)] = {**audit, "stopped_early": stopped}
            res["rows"][f"full_round{r}"] = _row(
                res, df, m, audit, {"round": r, "stopped_early": stopped}, vote
            )
            prev = audit["count"]
            timed(f"full_round{r}", t)
    if args.agree:
        t = time.perf_counter()
        agree = [x for x in args.agree.split(",") if x]
        pp = parse_params(
            PseudoParams, {"score": args.score, "agree": agree, "min_agree": args.min_agree}
        )
        labels, a = run_pseudo(step1[1], base_df, pp, truth, probe_df)
        audit = audit_row(a)
        _, df, m = run_finetune(ds, p2, init=step1[0], pseudo=labels)
        res["agree"] = {
            **audit,
            "agree": agree,
            "min_agree": pp.needed,
            "per_model_agreement": a["per_model_agreement"],
            "pairwise_agreement": a["pairwise_agreement"],
        }
        extra = {"agree": agree, "min_agree": pp.needed}
        res["rows"]["full_agree"] = _row(res, df, m, audit, extra, vote)
        timed("full_agree", t)


def rounds_markdown(out: dict) -> str:
    """Per round (and the consensus row): pseudo labels and WAF, mean over seeds."""
    seeds = [s for s in out["seeds"].values() if s.get("rows")]
    keys = sorted({k for s in seeds for k in s.get("rounds", {})}, key=int)
    if not keys and not any("agree" in s for s in seeds):
        return ""

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else float("nan")

    lines = [
        "",
        "| pseudo labels of | count | share | precision | agreement | CV WAF | test WAF "
        "| stopped |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in keys:
        got = [s["rounds"][k] for s in seeds if k in s.get("rounds", {})]
        row = "full" if k == "1" else f"full_round{k}"
        wafs = [s["rows"].get(row, {}) for s in seeds]
        lines.append(
            f"| round {k} | {mean([g['count'] for g in got]):.0f} "
            f"| {100 * mean([g['share'] for g in got]):.1f} % "
            f"| {100 * mean([g['precision'] for g in got]):.1f} % "
            f"| {100 * mean([g['agreement_rate'] for g in got]):.1f} % "
            f"| {100 * mean([w.get('cv_waf') for w in wafs]):.2f} "
            f"| {100 * mean([w.get('test_waf') for w in wafs]):.2f} "
            f"| {sum(bool(g['stopped_early']) for g in got)}/{len(got)} |"
        )
    got = [s["agree"] for s in seeds if "agree" in s]
    if got:
        wafs = [s["rows"]["full_agree"] for s in seeds if "full_agree" in s["rows"]]
        lines.append(
            f"| agree {','.join(got[0]['agree'])} ({got[0]['min_agree']} of "
            f"{len(got[0]['agree'])}) | {mean([g['count'] for g in got]):.0f} "
            f"| {100 * mean([g['share'] for g in got]):.1f} % "
            f"| {100 * mean([g['precision'] for g in got]):.1f} % "
            f"| {100 * mean([g['agreement_rate'] for g in got]):.1f} % "
            f"| {100 * mean([w['cv_waf'] for w in wafs]):.2f} "
            f"| {100 * mean([w['test_waf'] for w in wafs]):.2f} | – |"
        )
    return "\n".join(lines) + "\n"
