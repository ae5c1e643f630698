"""The MER2024 baseline's search protocol (MERTools): random hyperparameter trials, the best by
CV WAF, then that setting over several seeds (docs/training.md, "Baseline search").

MERTools' `main-release.py` (MER2024/, lines 167-169) draws each run's hyperparameters with
`func_random_select` (toolkit/utils/functions.py, lines 183-189): for every key of the model's
entry in `toolkit/model-tune.yaml`, one of its values uniformly, independently of the other
keys and of earlier runs. The attention model's entry (model-tune.yaml, lines 90-94):
hidden_dim 64/128/256, dropout 0.2/0.3/0.4/0.5, lr 1e-3/1e-4 and grad_clip -1 (none; our
baseline does not clip). Its runs are not seeded, so the best of its trials includes seed luck;
here trial k trains with a seed drawn from (search seed, k), and the best setting is then run
on seeds 0..seeds-1 for the mean ± std the paper's protocol reports.

Pure: no torch. The jobs that train are in `searchcli`.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, fields

import numpy as np

from ..errors import InputError
from ..params import AT_LEAST_1, NONNEG, option, option_error, parse_params
from .params import BaselineParams

# MERTools' attention entry of toolkit/model-tune.yaml (grad_clip [-1.0]: no clipping).
MERTOOLS_SPACE = {"hidden": [64, 128, 256], "dropout": [0.2, 0.3, 0.4, 0.5], "lr": [1e-3, 1e-4]}
# The baseline options a space may draw (not the seed, device or folds: trials share those).
SPACE_KEYS = (
    "hidden",
    "dropout",
    "lr",
    "weight_decay",
    "batch_size",
    "epochs",
    "patience",
    "oversample",
    "oversample_target",
    "standardize",
)
# A trial's training seed is drawn from [SEED_LO, 2**31): never one of the best setting's
# seeds 0..seeds-1, whose runs must be fresh ones.
SEED_LO = 2**20
# Where the trial's own training seed is drawn (a key no option has).
_SEED_KEY = "__seed__"


@dataclass
class SearchParams:
    """The config's `baseline_search:` section (rule baseline_search)."""

    trials: int = option(50, range=AT_LEAST_1, help="random trials (MERTools' authors: about 50)")
    seeds: int = option(
        6, range=AT_LEAST_1, help="runs of the best setting, on seeds 0..seeds-1 (MERTools: 6)"
    )
    seed: int = option(
        0, range=NONNEG, help="trial k's values and training seed are drawn from (seed, k)"
    )
    space: dict = option(
        MERTOOLS_SPACE,
        keys=SPACE_KEYS,
        noun="baseline option(s)",
        help="baseline option -> the values a trial draws one of (uniformly, each option on "
        "its own); default: MERTools' attention ranges",
    )

    def check(self) -> None:
        for key, values in self.space.items():
            if not isinstance(values, list) or not values:
                raise InputError(f"space.{key}: expected a non-empty list, got {values!r}")
            for v in values:
                why = option_error(BaselineParams, key, v)
                if why is None and not _typed(key, v):
                    why = f"{key}={v!r} has the wrong type"
                if why is not None:
                    raise InputError(f"space.{why}")
            if len({repr(v) for v in values}) != len(values):
                raise InputError(f"space.{key}: a value is listed twice in {values}")


def _typed(key: str, v) -> bool:
    kind = {f.name: f.type for f in fields(BaselineParams)}[key]
    if kind in ("int", int):
        return isinstance(v, int) and not isinstance(v, bool)
    if kind in ("float", float):
        return isinstance(v, int | float) and not isinstance(v, bool)
    return isinstance(v, bool)


def parse_search(given, what="baseline_search") -> SearchParams:
    return parse_params(SearchParams, given, what)


def _rng(seed: int, trial: int, key: str) -> np.random.Generator:
    # One stream per (seed, trial, option): adding trials or options changes no earlier draw.
    return np.random.default_rng([seed, trial, zlib.crc32(key.encode())])


def draw_trial(p: SearchParams, trial: int) -> dict:
    """Trial `trial`'s values (an option of the space -> one of its values) and its training
    seed (`seed`), a function of (p.seed, trial, the space) only."""
    if trial < 0:
        raise InputError(f"trial={trial} must be >= 0")
    drawn = {k: vs[int(_rng(p.seed, trial, k).integers(len(vs)))] for k, vs in p.space.items()}
    drawn["seed"] = int(_rng(p.seed, trial, _SEED_KEY).integers(SEED_LO, 2**31))
    return drawn


def trial_params(base: dict, p: SearchParams, trial: int) -> dict:
    """The baseline `--params` of a trial: the workflow's baseline job, the draws on top."""
    return {**base, **draw_trial(p, trial)}


def rank_trials(results: list[dict], p: SearchParams) -> tuple[list[dict], dict]:
    """Trial results (each {"trial", "params", "cv_waf", "test_waf", ...}) ranked by CV WAF
    (ties: the earlier trial), and the best one. Every trial 0..p.trials-1 must be there once,
    with the values this search draws for it (a trial of another space or seed is refused)."""
    got = sorted(r["trial"] for r in results)
    if got != list(range(p.trials)):
        missing = sorted(set(range(p.trials)) - set(got))
        extra = sorted({t for t in got if got.count(t) > 1 or not 0 <= t < p.trials})
        raise InputError(f"trial results: expected trials 0..{p.trials - 1}, missing "
                         f"{missing[:10]}, duplicated or out of range {extra[:10]}")  # fmt: skip
    for r in results:
        want = draw_trial(p, r["trial"])
        if {k: r["params"].get(k) for k in want} != want:
            raise InputError(
                f"trial {r['trial']}: its params {r['params']} are not this search's draw "
                f"{want} (another seed or space: rerun the trials)"
            )
        if not isinstance(r.get("cv_waf"), int | float) or math.isnan(r["cv_waf"]):
            raise InputError(f"trial {r['trial']}: no CV WAF ({r.get('cv_waf')!r})")
    ranked = sorted(results, key=lambda r: (-r["cv_waf"], r["trial"]))
    rows = [{"rank": i + 1, **r} for i, r in enumerate(ranked)]
    best = ranked[0]
    keys = list(p.space)
    chosen = {k: best["params"][k] for k in keys}
    distinct = len({tuple(repr(r["params"][k]) for k in keys) for r in results})
    return rows, {
        "trial": best["trial"],
        "params": chosen,
        "cv_waf": best["cv_waf"],
        "test_waf": best.get("test_waf"),
        "trials": p.trials,
        "distinct_settings": distinct,
        "space": p.space,
    }


def best_params(base: dict, best: dict, seed: int) -> dict:
    """The baseline `--params` of a best-setting run: the job's, the chosen values, `seed`."""
    return {**base, **best["params"], "seed": seed}


def _mean_std(values: list) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return float(np.mean(vals)), sd


def final_summary(best: dict, runs: list[dict]) -> dict:
    """The row `baseline_search_best`: CV and test WAF mean ± std (ddof 1, as Table 1) over
    the best setting's runs (each {"seed", "cv_waf", "test_waf"}), with the chosen values."""
    if not runs:
        raise InputError("baseline search: no run of the best setting")
    cv, cv_sd = _mean_std([r["cv_waf"] for r in runs])
    test, test_sd = _mean_std([r.get("test_waf") for r in runs])
    return {
        "row": "baseline_search_best",
        "params": best["params"],
        "best_trial": best["trial"],
        "trials": best["trials"],
        "seeds": [r["seed"] for r in runs],
        "cv_waf": cv,
        "cv_waf_std": cv_sd,
        "test_waf": test,
        "test_waf_std": test_sd,
        "runs": runs,
    }


def _pct(v) -> str:
    return "–" if v is None or v != v else f"{100 * v:.2f}"


def markdown(summary: dict, rows: list[dict] | None = None) -> str:
    """The summary row (WAF in %), then the ranked trials when given."""
    s = summary
    lines = [
        "| row | CV WAF | test WAF | seeds | params |",
        "|---|---|---|---|---|",
        f"| {s['row']} | {_pct(s['cv_waf'])} ± {_pct(s['cv_waf_std'])} | "
        f"{_pct(s['test_waf'])} ± {_pct(s['test_waf_std'])} | {len(s['seeds'])} | "
        f"{', '.join(f'{k}={v}' for k, v in s['params'].items())} (trial {s['best_trial']} "
        f"of {s['trials']}) |",
    ]
    if rows:
        keys = list(s["params"])
        lines += ["", f"| rank | trial | {' | '.join(keys)} | seed | CV WAF | test WAF |"]
        lines.append("|---" * (len(keys) + 5) + "|")
        for r in rows:
            vals = " | ".join(str(r["params"][k]) for k in keys)
            lines.append(
                f"| {r['rank']} | {r['trial']} | {vals} | {r['params']['seed']} | "
                f"{_pct(r['cv_waf'])} | {_pct(r.get('test_waf'))} |"
            )
    return "\n".join(lines) + "\n"


def trials_frame(rows: list[dict]):
    """The ranked trials as a flat table (trials.csv)."""
    import pandas as pd

    flat = [
        {"rank": r["rank"], "trial": r["trial"], **r["params"], "cv_waf": r["cv_waf"],
         "test_waf": r.get("test_waf"), "best_epochs": " ".join(map(str, r.get("best_epochs", [])))}
        for r in rows
    ]  # fmt: skip
    return pd.DataFrame(flat)


@dataclass(frozen=True)
class SearchPlan:
    """What the rules of workflow/rules/search.smk read: the trial indices, the best
    setting's seeds, the search's `--search` object and the part of it a trial depends on
    (`trial_params`: seed and space, so adding trials or seeds reruns no trial)."""

    trials: tuple[int, ...]
    seeds: tuple[int, ...]
    params: dict

    @property
    def trial_params(self) -> dict:
        return {k: v for k, v in self.params.items() if k in ("seed", "space")}

    @classmethod
    def of(cls, config) -> SearchPlan:
        p = parse_search(config.get("baseline_search"))
        given = config.get("baseline_search") or {}
        return cls(tuple(range(p.trials)), tuple(range(p.seeds)), dict(given))


__all__ = [
    "MERTOOLS_SPACE",
    "SPACE_KEYS",
    "SearchParams",
    "SearchPlan",
    "best_params",
    "draw_trial",
    "final_summary",
    "markdown",
    "parse_search",
    "rank_trials",
    "trial_params",
    "trials_frame",
]
