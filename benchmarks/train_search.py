"""The MER2024 baseline's search protocol in benchmarks/train_bench.py (`--search-trials N
--search-seeds S`): N random trials of MERTools' ranges (mersemi.train.search), the best by CV
WAF, then that setting on seeds 0..S-1; the row `baseline_search_best` (CV and test WAF mean ±
std over the S seeds), the ranked trials and the chosen values. The same functions as the
workflow's `baseline_search` jobs (mersemi.train.searchcli); run from benchmarks/."""

import time

from mersemi.train.search import final_summary, markdown, parse_search, rank_trials
from mersemi.train.searchcli import run_best, run_trial


def add_arguments(ap) -> None:
    ap.add_argument("--search-trials", type=int, default=0, help="> 0: the baseline search")
    ap.add_argument("--search-seeds", type=int, default=6, help="runs of the best setting")
    ap.add_argument("--search-seed", type=int, default=0, help="draws the trials")


def run_search(args, ds, out: dict, save) -> dict:
    """The search on `ds` with the benchmark's baseline schedule (--folds, --baseline-epochs,
    CPU); results in out["baseline_search"], saved after every job."""
    search = parse_search(
        {"trials": args.search_trials, "seeds": args.search_seeds, "seed": args.search_seed},
        "--search-*",
    )
    base = {"device": "cpu", "threads": args.threads, "progress": False, "folds": args.folds,
            "epochs": args.baseline_epochs}  # fmt: skip
    res = out["baseline_search"] = {"search": vars(search), "base": base, "trials": []}
    t = time.perf_counter()
    for k in range(search.trials):
        trial = run_trial(ds, base, search, k)
        trial.pop("baseline_params")
        res["trials"].append(trial)
        save()
    res["seconds_trials"] = time.perf_counter() - t
    rows, best = rank_trials(res["trials"], search)
    res["ranked"], res["best"] = rows, best
    t = time.perf_counter()
    runs = []
    for seed in range(search.seeds):
        _, m = run_best(ds, base, best, seed)
        runs.append({k: m[k] for k in ("seed", "cv_waf", "test_waf")})
        res["runs"] = runs
        save()
    res["seconds_best"] = time.perf_counter() - t
    res["summary"] = final_summary(best, runs)
    save()
    return res


def search_markdown(out: dict) -> str:
    """The search's row and ranked trials ("" without a finished search)."""
    res = out.get("baseline_search") or {}
    if "summary" not in res:
        return ""
    return "\n## Baseline search (MERTools' protocol)\n\n" + markdown(res["summary"], res["ranked"])
