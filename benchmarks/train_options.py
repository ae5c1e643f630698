"""Issue 30's rows of benchmarks/train_bench.py, beside the full variant (run from
benchmarks/, as train_seed.py's sibling):

- `full_prior_em`: the full variant's step-2 predictions voted again with `vote.prior: em`
  (no retraining): CV figures are the full row's by construction (labeled rows keep their
  probabilities), test WAF moves; the pool's estimated prior beside the labeled one and the
  pool's true mix (from the hidden labels).
- `full_moddrop`: the full chain again (step 1 -> pseudo labels -> step 2) with
  `finetune.modality_dropout` P in both steps (`--modality-dropout`).
"""

import time

import numpy as np

from mersemi.classes import CLASSES
from mersemi.train.cli import vote_both
from mersemi.train.params import PseudoParams, VoteParams, parse_finetune, parse_params
from mersemi.train.pipeline import run_finetune, run_pseudo


def _m(metrics, part):
    return metrics[part]["waf"] if metrics.get(part) else None


def _votes(v: dict) -> dict:
    out = {}
    for use, suffix in (("paper", ""), ("fitted", "_fitted"), ("auto", "_auto")):
        out[f"cv_waf{suffix}"] = _m(v["votes"][use], "cv")
        out[f"test_waf{suffix}"] = _m(v["votes"][use], "test")
    return out


def pool_mix(df, truth) -> dict[str, float]:
    """The true class mix of the pool rows (split unlabeled or test) of a predictions frame."""
    names = set(df.loc[df["split"] != "train", "name"])
    lab = truth[truth["name"].isin(names)]["discrete"]
    return {c: round(float(np.mean(lab == c)), 6) for c in CLASSES}


def prior_em_row(df2, truth) -> dict:
    """The full row's step-2 predictions, voted with vote.prior em."""
    _, v = vote_both(df2, parse_params(VoteParams, {"prior": "em"}))
    pr = v["votes"]["paper"]["prior"]
    return {
        **_votes(v),
        "prior_estimated": pr["estimated"],
        "prior_labeled": pr["labeled"],
        "prior_pool_true": pool_mix(df2, truth),
        "prior_iterations": pr["iterations"],
        "prior_changed": pr["changed_predictions"],
    }


def moddrop_row(args, ds, truth, ft: dict, ft2: dict, pretrained, base_df) -> dict:
    """Step 1 -> pseudo labels -> step 2 of the full variant with modality dropout."""
    p_drop = {"modality_dropout": args.modality_dropout}
    ck1, df1, m1 = run_finetune(
        ds, parse_finetune({**ft, **p_drop, "step": 1}), pretrained=pretrained
    )
    pp = parse_params(PseudoParams, {"score": args.score, "selection": "paper"})
    pseudo, audit = run_pseudo(df1, base_df, pp, truth)
    p2 = parse_finetune({**ft2, **p_drop, "step": 2})
    _, df2, m2 = run_finetune(ds, p2, init=ck1, pseudo=pseudo)
    _, v2 = vote_both(df2, parse_params(VoteParams, {}))
    _, v1 = vote_both(df1, parse_params(VoteParams, {}))
    return {
        **_votes(v2),
        "modality_dropout": args.modality_dropout,
        "step1_cv_waf": _m(v1["votes"]["paper"], "cv"),
        "step1_test_waf": _m(v1["votes"]["paper"], "test"),
        "pseudo_labels": m2.get("pseudo_labels"),
        "pseudo_count": audit["selected"]["count"],
        "step1_best_epochs": [f["best_epoch"] for f in m1["folds"]],
        "step2_best_epochs": [f["best_epoch"] for f in m2["folds"]],
    }


def option_rows(args, ds, truth, res: dict, timed, df2, ft, ft2, pretrained, base_df) -> None:
    """Add the rows that `--prior-em` and `--modality-dropout` ask for to `res["rows"]`."""
    if args.prior_em:
        t = time.perf_counter()
        res["rows"]["full_prior_em"] = prior_em_row(df2, truth)
        timed("full_prior_em", t)
    if args.modality_dropout:
        t = time.perf_counter()
        res["rows"]["full_moddrop"] = moddrop_row(args, ds, truth, ft, ft2, pretrained, base_df)
        timed("full_moddrop", t)
