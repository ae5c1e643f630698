"""The MER2024 baseline's search protocol (train.search, train.searchcli): the sampler, the
ranking, the summary, and the four CLI jobs end to end on the tiny store."""

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.train_store import feature_args as _feat

from mersemi.cli import main
from mersemi.errors import InputError
from mersemi.train.search import (
    MERTOOLS_SPACE,
    SEED_LO,
    SearchParams,
    draw_trial,
    final_summary,
    parse_search,
    rank_trials,
)

REPO = Path(__file__).resolve().parents[1]


def test_default_space_is_mertools_attention_entry():
    # MERTools MER2024/toolkit/model-tune.yaml, `attention:` (lines 90-94), written out by hand.
    assert parse_search(None).space == {
        "hidden": [64, 128, 256],
        "dropout": [0.2, 0.3, 0.4, 0.5],
        "lr": [0.001, 0.0001],
    }
    p = parse_search(None)
    assert (p.trials, p.seeds, p.seed) == (50, 6, 0)


def test_draws_are_deterministic_within_the_space_and_stable_as_trials_grow():
    small, big = parse_search({"trials": 3}), parse_search({"trials": 200})
    a = [draw_trial(small, k) for k in range(3)]
    assert a == [draw_trial(parse_search({"trials": 3}), k) for k in range(3)]
    assert a == [draw_trial(big, k) for k in range(3)]  # more trials: the first ones kept
    draws = [draw_trial(big, k) for k in range(200)]
    for d in draws:
        assert all(d[k] in MERTOOLS_SPACE[k] for k in MERTOOLS_SPACE)
        assert SEED_LO <= d["seed"] < 2**31  # never one of the best setting's seeds 0..5
    # Each option uniform over its values: a chi-square goodness of fit, independent of the
    # implementation (200 draws; the 0.999 quantile of chi2 with 3 dof is 16.3).
    for key, values in MERTOOLS_SPACE.items():
        n = Counter(d[key] for d in draws)
        assert set(n) == set(values)
        expected = 200 / len(values)
        assert sum((n[v] - expected) ** 2 / expected for v in values) < 16.3
    # Another search seed draws other trials; a new option leaves the others' draws alone.
    other = parse_search({"seed": 1, "trials": 200})
    assert [draw_trial(other, k) for k in range(20)] != draws[:20]
    wider = parse_search({"trials": 3, "space": {**MERTOOLS_SPACE, "weight_decay": [0, 1e-5]}})
    for k in range(3):
        d = draw_trial(wider, k)
        assert {x: d[x] for x in a[k]} == a[k] and d["weight_decay"] in (0, 1e-5)


@pytest.mark.parametrize(
    "given, words",
    [
        ({"trials": 0}, "trials=0"),
        ({"space": {"seed": [1, 2]}}, "unknown baseline option(s) ['seed']"),
        ({"space": {"dropout": [0.2, 1.5]}}, "space.dropout=1.5"),
        ({"space": {"hidden": []}}, "space.hidden: expected a non-empty list"),
        ({"space": {"hidden": [64, 64]}}, "listed twice"),
        ({"space": {"hidden": [64.5]}}, "hidden=64.5 has the wrong type"),
        ({"seeds": "six"}, "seeds"),
    ],
)
def test_bad_values_are_one_line(given, words):
    with pytest.raises(InputError, match=None) as e:
        parse_search(given)
    assert words in str(e.value) and "\n" not in str(e.value)


def _result(p, k, cv, test=None):
    return {"trial": k, "params": draw_trial(p, k), "cv_waf": cv, "test_waf": test}


def test_ranking_picks_the_best_cv_waf_ties_to_the_earlier_trial():
    p = parse_search({"trials": 4})
    res = [_result(p, 0, 0.5), _result(p, 1, 0.7, 0.1), _result(p, 2, 0.7), _result(p, 3, 0.2)]
    rows, best = rank_trials(res[::-1], p)
    assert [r["trial"] for r in rows] == [1, 2, 0, 3] and [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert best["trial"] == 1 and best["cv_waf"] == 0.7 and best["test_waf"] == 0.1
    assert best["params"] == {k: draw_trial(p, 1)[k] for k in MERTOOLS_SPACE}
    with pytest.raises(InputError, match=r"missing \[3\]"):
        rank_trials(res[:3], p)
    stale = [*res[:3], {**res[3], "params": {**res[3]["params"], "seed": 1}}]
    with pytest.raises(InputError, match="trial 3: its params"):
        rank_trials(stale, p)


def test_final_summary_is_mean_and_sample_std():
    best = {"trial": 4, "trials": 9, "params": {"hidden": 64}}
    runs = [
        {"seed": 0, "cv_waf": 0.5, "test_waf": 0.4},
        {"seed": 1, "cv_waf": 0.7, "test_waf": 0.6},
    ]
    s = final_summary(best, runs)
    # mean 0.6; sample std of (0.5, 0.7) = sqrt(2 * 0.1**2 / 1) = 0.1414...
    assert s["cv_waf"] == pytest.approx(0.6) and s["test_waf"] == pytest.approx(0.5)
    assert s["cv_waf_std"] == pytest.approx(math.sqrt(0.02)) == s["test_waf_std"]
    assert s["seeds"] == [0, 1] and s["row"] == "baseline_search_best"


def _run(*argv):
    assert main([*map(str, argv)]) == 0


def test_trials_summary_best_and_final_end_to_end(store, tmp_path):
    search = json.dumps({"trials": 3, "seeds": 2, "space": {"hidden": [4, 8], "lr": [1e-2]}})
    base = json.dumps({"epochs": 2, "folds": 3, "progress": False, "batch_size": 32})
    trials = []
    for k in range(3):
        trials.append(tmp_path / f"trial{k}.json")
        _run("train", "baseline-trial", *_feat(store), "--params", base, "--search", search,
             "--trial", k, "--out", trials[-1])  # fmt: skip
    got = [json.loads(t.read_text()) for t in trials]
    p = parse_search(search)
    for k, g in enumerate(got):
        assert g["params"] == draw_trial(p, k) and 0 <= g["cv_waf"] <= 1
        # the trial trained with its draws on top of the base (hidden, lr, seed) and the base
        assert {x: g["baseline_params"][x] for x in g["params"]} == g["params"]
        assert g["baseline_params"]["epochs"] == 2 and len(g["best_epochs"]) == 3
    out = tmp_path / "s"
    _run("train", "baseline-search-summary", "--search", search, "--trials", *trials,
         "--out-csv", out / "trials.csv", "--out-best", out / "best.json")  # fmt: skip
    table = pd.read_csv(out / "trials.csv")
    want = max(range(3), key=lambda k: (got[k]["cv_waf"], -k))  # best CV WAF, earliest on ties
    assert list(table["rank"]) == [1, 2, 3] and table["trial"][0] == want
    assert np.all(np.diff(table["cv_waf"]) <= 0)
    best = json.loads((out / "best.json").read_text())
    assert best["trial"] == want and best["params"] == {
        k: got[want]["params"][k] for k in ("hidden", "lr")
    }
    runs = []
    for seed in (0, 1):
        runs.append(out / f"best{seed}.json")
        _run("train", "baseline-best", *_feat(store), "--params", base, "--best",
             out / "best.json", "--seed", seed, "--out-metrics", runs[-1])  # fmt: skip
        m = json.loads(runs[-1].read_text())
        assert m["params"]["seed"] == seed and m["params"]["hidden"] == best["params"]["hidden"]
    _run("train", "baseline-search-final", "--best", out / "best.json", "--runs", *runs,
         "--trials-csv", out / "trials.csv", "--out-json", out / "final.json",
         "--out-md", out / "final.md")  # fmt: skip
    final = json.loads((out / "final.json").read_text())
    cvs = [json.loads(r.read_text())["cv_waf"] for r in runs]
    assert final["cv_waf"] == pytest.approx(np.mean(cvs))
    assert final["cv_waf_std"] == pytest.approx(np.std(cvs, ddof=1))
    assert "baseline_search_best" in (out / "final.md").read_text()


def test_cli_refuses_a_negative_trial(store, tmp_path, capsys):
    argv = ["train", "baseline-trial", *_feat(store), "--search", '{"trials": 3}']
    assert main([*argv, "--trial", "-1", "--out", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--trial -1 must be >= 0" in err and "\n" not in err
    assert not (tmp_path / "t.json").exists()


def test_search_params_round_trip_the_dataclass():
    assert isinstance(parse_search({"trials": 2}), SearchParams)
