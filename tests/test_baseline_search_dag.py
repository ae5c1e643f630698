"""`snakemake baseline_search` plans the baseline search (a dry run: nothing is trained): one
job per trial, one summary, one job per seed of the best setting, one final summary; `all`
plans none of them, and a bad `baseline_search:` value is one line at load."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _dry_run(tmp_path, search, target):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["baseline_search"] = search
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--configfile", str(tmp_path / "config.yaml"), "--directory", str(tmp_path),
           "-n", "-p", "--cores", "1", target]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)


def _jobs(out: str) -> dict[str, list[str]]:
    jobs = {}
    for job in out.split("\nrule ")[1:]:
        output = re.search(r"^\s+output: (.*)$", job, re.M)
        jobs.setdefault(job.split(":", 1)[0], []).append(output.group(1) if output else "")
    return jobs


def test_search_plans_trials_summary_seeds_and_final(tmp_path):
    proc = _dry_run(tmp_path, {"trials": 3, "seeds": 2, "seed": 5}, "baseline_search")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    jobs = _jobs(out)
    assert sorted(jobs["baseline_trial"]) == [
        f"results/baseline_search/trials/trial{k}.json" for k in range(3)
    ]
    assert len(jobs["baseline_search_summary"]) == 1
    assert sorted(o.split(",")[0] for o in jobs["baseline_best"]) == [
        f"results/baseline_search/best/seed{s}/metrics.json" for s in range(2)
    ]
    assert len(jobs["baseline_search"]) == 1
    # The summary reads every trial; the best-setting jobs read best.json and train on their
    # seed; the trials take the search and the baseline job's params.
    summary = out[out.index("mersemi train baseline-search-summary") :].split("\n")[0]
    assert all(f"trials/trial{k}.json" in summary for k in range(3))
    assert out.count("--best results/baseline_search/best.json --seed") == 2
    assert "--trial 2 " in out
    # A trial depends on the search's seed and space only: adding trials reruns no trial.
    trial = out[out.index("mersemi train baseline-trial") :].split("\n")[0]
    assert "--search '{\"seed\":5}'" in trial and '"trials":3' in summary


def test_all_plans_no_search_job(tmp_path):
    proc = _dry_run(tmp_path, {"trials": 3, "seeds": 2}, "all")
    assert proc.returncode == 0, proc.stderr
    assert "baseline_trial" not in _jobs(proc.stdout + proc.stderr)


def test_a_bad_search_value_is_one_line_at_load(tmp_path):
    proc = _dry_run(tmp_path, {"trials": 0}, "baseline_search")
    assert proc.returncode == 2
    assert "baseline_search: trials=0 must be >= 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _dry_run(tmp_path, {"space": {"hidden": 64}}, "baseline_search")
    assert proc.returncode == 2 and "baseline_search.space.hidden" in proc.stderr, proc.stderr
