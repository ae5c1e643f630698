"""`mersemi train baseline-trial | baseline-search-summary | baseline-best |
baseline-search-final`: the MER2024 baseline's search protocol (train.search), one job each.

    baseline-trial --trial K    trial K's CV WAF with its drawn values (a small JSON)
    baseline-search-summary     every trial's JSON -> trials.csv (ranked) and best.json
    baseline-best --seed S      the best setting's baseline CV on seed S (metrics, predictions)
    baseline-search-final       the best setting's runs -> CV and test WAF mean ± std
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from . import io
from .params import BaselineParams, parse_params
from .search import (
    best_params,
    final_summary,
    markdown,
    parse_search,
    rank_trials,
    trial_params,
    trials_frame,
)


def _waf(metrics: dict, part: str):
    return metrics[part]["waf"] if metrics.get(part) else None


def run_trial(ds, base: dict, search, trial: int) -> dict:
    """Trial `trial` of `search` on `ds`: the baseline's k-fold CV with the drawn values on
    top of `base` (the workflow's baseline params). Its CV and test WAF, best epochs."""
    from .pipeline import run_baseline

    given = trial_params(base, search, trial)
    p = parse_params(BaselineParams, given, what=f"trial {trial}")
    _, _, m = run_baseline(ds, p)
    return {
        "trial": trial,
        "params": {k: given[k] for k in [*search.space, "seed"]},
        "cv_waf": _waf(m, "cv"),
        "test_waf": _waf(m, "test"),
        "best_epochs": [f["best_epoch"] for f in m["folds"]],
        "baseline_params": m["params"],
    }


def run_best(ds, base: dict, best: dict, seed: int):
    """The best setting's baseline CV on `seed`: (predictions frame, metrics)."""
    from .pipeline import run_baseline

    p = parse_params(
        BaselineParams, best_params(base, best, seed), what=f"best setting, seed {seed}"
    )
    _, df, m = run_baseline(ds, p)
    return df, {"seed": seed, "cv_waf": _waf(m, "cv"), "test_waf": _waf(m, "test"), **m}


def _read_json(path: str, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} {path} not found") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{what} {path} is not JSON ({e})") from None


def _features(p: argparse.ArgumentParser) -> None:
    for m in ("acoustic", "visual", "text"):
        p.add_argument(f"--{m}", required=True, help=f"merged {m} feature file (HDF5)")
    p.add_argument("--manifest", required=True, help="manifest CSV")
    p.add_argument("--params", default="{}", help="JSON object of BaselineParams (the base)")


def _search(p: argparse.ArgumentParser) -> None:
    p.add_argument("--search", default="{}", help="JSON object of SearchParams")


def register(tsub: argparse._SubParsersAction) -> None:
    p = tsub.add_parser("baseline-trial", help="baseline search: one random trial's CV WAF")
    _features(p)
    _search(p)
    p.add_argument("--trial", type=int, required=True, help="trial index (0 .. trials-1)")
    p.add_argument("--out", required=True, help="the trial's JSON")
    p.set_defaults(func=_trial)

    p = tsub.add_parser("baseline-search-summary", help="baseline search: rank the trials")
    _search(p)
    p.add_argument("--trials", nargs="+", required=True, help="every trial's JSON")
    p.add_argument("--out-csv", required=True, help="trials ranked by CV WAF (CSV)")
    p.add_argument("--out-best", required=True, help="the best trial's values (JSON)")
    p.set_defaults(func=_summary)

    p = tsub.add_parser("baseline-best", help="baseline search: the best setting on one seed")
    _features(p)
    p.add_argument("--best", required=True, help="best.json of baseline-search-summary")
    p.add_argument("--seed", type=int, required=True, help="the run's training seed")
    p.add_argument("--out-metrics", required=True, help="metrics JSON")
    p.add_argument("--out-predictions", help="predictions CSV")
    p.set_defaults(func=_best)

    p = tsub.add_parser(
        "baseline-search-final", help="baseline search: the best setting's mean ± std"
    )
    p.add_argument("--best", required=True, help="best.json of baseline-search-summary")
    p.add_argument("--trials-csv", help="ranked trials (CSV): listed in the markdown too")
    p.add_argument("--runs", nargs="+", required=True, help="metrics JSON of every run")
    p.add_argument("--out-json", required=True)
    p.add_argument("--out-md", required=True)
    p.set_defaults(func=_final)


def _load(args):
    from .data import load_dataset

    return load_dataset(args.acoustic, args.visual, args.text, args.manifest)


def _base(args) -> dict:
    parse_params(BaselineParams, args.params)  # the base alone is a valid baseline job
    return json.loads(args.params) if args.params.strip() else {}


def _trial(args) -> None:
    # A trial depends on the search's seed and space only (the workflow passes just those,
    # so adding trials plans only the new ones); the summary checks the count.
    search = parse_search(args.search, "--search")
    if args.trial < 0:
        raise InputError(f"--trial {args.trial} must be >= 0")
    io.write_json(run_trial(_load(args), _base(args), search, args.trial), args.out)


def _summary(args) -> None:
    search = parse_search(args.search, "--search")
    results = [_read_json(f, "trial JSON") for f in args.trials]
    rows, best = rank_trials(results, search)
    io.write_csv(trials_frame(rows), args.out_csv)
    io.write_json(best, args.out_best)


def _best(args) -> None:
    best = _read_json(args.best, "--best")
    df, metrics = run_best(_load(args), _base(args), best, args.seed)
    io.write_json({"best_trial": best.get("trial"), **metrics}, args.out_metrics)
    if args.out_predictions:
        io.write_csv(df, args.out_predictions)


def _final(args) -> None:
    from ..atomic import atomic_path

    best = _read_json(args.best, "--best")
    runs = []
    for f in args.runs:
        m = _read_json(f, "run metrics")
        if m.get("best_trial") != best.get("trial"):
            raise InputError(f"{f}: a run of trial {m.get('best_trial')}, not the best "
                             f"{best.get('trial')} (rerun the best setting)")  # fmt: skip
        runs.append({k: m.get(k) for k in ("seed", "cv_waf", "test_waf")})
    summary = final_summary(best, runs)
    io.write_json(summary, args.out_json)
    rows = None
    if args.trials_csv:
        import pandas as pd

        df = pd.read_csv(args.trials_csv)
        keys = [*best["params"], "seed"]
        rows = [
            {"rank": r["rank"], "trial": r["trial"], "params": {k: r[k] for k in keys},
             "cv_waf": r["cv_waf"], "test_waf": r["test_waf"]}
            for r in df.to_dict("records")
        ]  # fmt: skip
    with atomic_path(args.out_md) as tmp:
        Path(tmp).write_text(markdown(summary, rows), "utf-8")
