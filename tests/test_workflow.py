"""End to end: the demo DAG through Snakemake, then what a config or code edit reruns.

One run of the whole workflow (the README's `make run`, in a temp dir), shared by the tests.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EXTRACTION = {"demo", "tiny_models", "manifest", "faces", "audio", "asr", "visual", "acoustic",
              "text", "merge_features"}  # fmt: skip

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--configfile", str(workdir / "config.yaml"), "--directory", str(workdir),
           "--cores", "2", *args]  # fmt: skip
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        **(env or {}),
    }
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)


def planned(workdir: Path, config: dict | None = None, env=None) -> dict[str, int]:
    """Rule -> job count of a dry run (after writing `config`, if given)."""
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", "--quiet", "rules", env=env)
    assert proc.returncode == 0, proc.stderr
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", proc.stdout, re.M)
            if m[1] != "total"}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(workdir)
    if proc.returncode != 0:
        logs = "\n".join(
            f"== {p}\n{p.read_text()[-2000:]}" for p in (workdir / "logs").rglob("*.log")
        )
        pytest.fail(f"demo workflow failed:\n{proc.stderr[-4000:]}\n{logs}")
    return workdir, config


def test_demo_produces_submission_metrics_and_report(demo):
    workdir, _ = demo
    results = workdir / "results"
    manifest = pd.read_csv(results / "manifest.csv", keep_default_na=False)
    sub = pd.read_csv(results / "submission.csv")
    assert list(sub.columns) == ["name", "discrete"]
    assert set(sub["name"]) == set(manifest.loc[manifest.split != "train", "name"])
    metrics = json.loads((results / "train/full/step2/vote/metrics.json").read_text())
    # Per-class cues survive every stage: CV WAF clearly above chance even with random encoders.
    assert metrics["cv"]["waf"] > 0.5, metrics["cv"]
    table = pd.read_csv(results / "ablations/table1.csv")
    assert len(table) == 6 and table["cv_waf"].notna().all()
    html = (results / "report.html").read_text()
    assert "Ablations" in html and "Pseudo labels" in html and "true \\ predicted" in html
    assert planned(workdir) == {}  # nothing left to do


def test_training_edit_does_not_rerun_extraction(demo):
    workdir, config = demo
    edited = yaml.safe_load(yaml.safe_dump(config))
    edited["train"]["pretrain"]["epochs"] = 7
    jobs = planned(workdir, edited)
    assert "pretrain" in jobs and "report" in jobs
    assert not EXTRACTION & jobs.keys() and "baseline" not in jobs
    planned(workdir, config)


def test_stage_param_edit_reruns_that_stage_and_its_dependents_only(demo):
    workdir, config = demo
    edited = yaml.safe_load(yaml.safe_dump(config))
    edited["extract"]["text"]["max_tokens"] = 64
    jobs = planned(workdir, edited)
    assert jobs["text"] == config["shards"] and jobs["merge_features"] == 1
    assert {"faces", "audio", "asr", "visual", "acoustic"}.isdisjoint(jobs)
    assert "baseline" in jobs and "report" in jobs
    planned(workdir, config)


def test_editing_a_stage_module_reruns_that_stage(demo, tmp_path):
    workdir, config = demo
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "mersemi", src / "mersemi")
    env = {"PYTHONPATH": str(src)}
    assert planned(workdir, config, env=env) == {}
    with (src / "mersemi" / "extract" / "audio.py").open("a") as f:
        f.write("\n# an edit\n")
    jobs = planned(workdir, config, env=env)
    assert jobs["audio"] == config["shards"] and {"acoustic", "asr", "text"} <= jobs.keys()
    assert {"faces", "visual", "demo", "manifest"}.isdisjoint(jobs)
