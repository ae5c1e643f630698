"""End to end: the demo DAG through Snakemake, then what a config or code edit reruns.

One run of the whole workflow (the README's `make run`, in a temp dir), shared by the tests.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml

from mersemi.runlock import claim

REPO = Path(__file__).resolve().parents[1]
STAGES = {"faces", "audio", "asr", "visual", "acoustic", "text"}
EXTRACTION = STAGES | {"tiny_models", "merge_features"}
PLOTS = ("training_curves", "confusion", "f1_per_class", "pseudo_label_sweep", "feature_validity")

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, env=None, repo=REPO) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"),
           "--configfile", str(workdir / "config.yaml"), "--directory", str(workdir),
           "--cores", "2", *args]  # fmt: skip
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        **(env or {}),
    }
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)


def planned(workdir: Path, config: dict | None = None, env=None, repo=REPO) -> dict[str, int]:
    """Rule -> job count of a dry run (after writing `config`, if given)."""
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(workdir, "-n", "--quiet", "rules", env=env, repo=repo)
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
            f"== {p}\n{p.read_text()[-2000:]}"
            for p in (workdir / "results" / "logs").rglob("*.log")
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
    status = pd.read_csv(results / "submission_status.csv")
    assert list(status["name"]) == list(sub["name"]) and set(status["status"]) <= {
        "ok",
        "no_valid_modality",
    }
    metrics = json.loads((results / "train/full/step2/vote/metrics.json").read_text())
    # Per-class cues survive every stage: CV WAF clearly above chance even with random encoders.
    assert metrics["cv"]["waf"] > 0.5, metrics["cv"]
    table = pd.read_csv(results / "ablations/table1.csv")
    assert len(table) == 7 and table["cv_waf"].notna().all()  # 6 rows + the linear probe
    html = (results / "report.html").read_text()
    assert "Ablations" in html and "Pseudo labels" in html and "true \\ predicted" in html
    assert "Provenance" in html
    # The feature benchmark: in rule all and on the page; its combination of the trained sets
    # at the workflow's params is Table 1's baseline and probe rows.
    bench = json.loads((results / "feature_benchmark/table.json").read_text())
    assert "Feature benchmark" in html and "data:image/png;base64," in html
    combo = {r["model"]: r for r in bench["rows"] if r["sets"] == "acoustic+visual+text"}
    rows = table.set_index("method")
    assert round(combo["baseline"]["cv_waf"], 2) == rows.loc["MER2024 baseline", "cv_waf"]
    assert (
        round(combo["probe"]["cv_waf"], 2)
        == rows.loc["Linear probe (logistic regression)", "cv_waf"]
    )
    assert planned(workdir) == {}  # nothing left to do

    # The Snakemake report: every plot, the summary page and Table 1, with their captions.
    proc = snakemake(workdir, "--report", "results/report.zip")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with zipfile.ZipFile(results / "report.zip") as z:
        names = "\n".join(z.namelist())
        for plot in PLOTS:
            assert f"{plot}.png" in names, (plot, names[:2000])
        assert "table1.csv" in names and "report.html" in names
        assert "plot.png" in names and "table.csv" in names  # the feature benchmark


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
    checkout = tmp_path / "checkout"  # the workflow runs its own checkout's src/
    checkout.mkdir()
    for part in ("Snakefile", "workflow", "envs", "src"):
        copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy2
        copy(REPO / part, checkout / part)
    assert planned(workdir, config, repo=checkout) == {}
    with (checkout / "src" / "mersemi" / "extract" / "audio" / "wavs.py").open("a") as f:
        f.write("\n# an edit\n")
    jobs = planned(workdir, config, repo=checkout)
    assert jobs["audio"] == config["shards"] and {"acoustic", "asr", "text"} <= jobs.keys()
    assert {"faces", "visual", "manifest"}.isdisjoint(jobs)


@pytest.fixture
def copy_of_demo(demo, tmp_path):
    """The finished demo run, copied with its timestamps, to edit its data freely."""
    workdir, config = demo
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy, symlinks=True)
    return copy, config, copy / "resources" / "demo"


def test_label_edit_retrains_without_extraction(copy_of_demo):
    run, config, data = copy_of_demo
    labels = data / "labels.csv"
    first = labels.read_text().splitlines()[1]
    name, label = first.split(",")
    new = "sad" if label != "sad" else "happy"
    labels.write_text(labels.read_text().replace(first, f"{name},{new}"))
    jobs = planned(run)
    assert not EXTRACTION & jobs.keys(), jobs
    assert jobs["manifest"] == 1 and "baseline" in jobs and "report" in jobs
    assert "pretrain" not in jobs and "splits" not in jobs  # pretraining reads no label
    (data / "test_labels.csv").touch()
    assert not EXTRACTION & planned(run).keys()


def test_transcript_edit_reruns_text_of_one_shard(copy_of_demo):
    run, config, data = copy_of_demo
    path = data / "transcripts.csv"
    rows = path.read_text(encoding="utf-8").splitlines()
    rows[1] = rows[1].split(",")[0] + ",改过的句子"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    jobs = planned(run)
    assert jobs["text"] == 1 and jobs["merge_features"] == 1, jobs
    assert {"faces", "audio", "visual", "acoustic", "manifest"}.isdisjoint(jobs)


def test_added_clip_is_the_only_one_extracted(copy_of_demo):
    run, config, data = copy_of_demo
    donor = sorted((data / "unlabeled").iterdir())[0]
    shutil.copy(donor, data / "unlabeled" / "zz_added.mp4")
    jobs = planned(run)
    assert {s: jobs.get(s) for s in STAGES} == dict.fromkeys(STAGES, 1), jobs
    assert jobs["merge_features"] == 3 and jobs["manifest"] == 1

    # Run the extraction for real, with a PATH that lacks the venv: the rules find it.
    targets = [f"results/features/{m}.h5" for m in ("visual", "acoustic", "text")]
    proc = snakemake(run, *targets, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    clips = pd.read_csv(run / "results" / "inventory" / "clips.csv", dtype={"shard": int})
    new_shard = f"{clips.set_index('name').loc['zz_added', 'shard']:04d}"
    assert new_shard == f"{config['shards']:04d}"  # the first shard after the base ones
    for stage in ("visual", "acoustic", "text"):
        shard_out = run / "results" / "features" / stage / f"shard-{new_shard}"
        reasons = pd.read_csv(shard_out.with_suffix(".reasons.csv"))
        assert reasons["name"].tolist() == ["zz_added"]
        merged = h5py.File(run / "results" / "features" / f"{stage}.h5")
        assert "zz_added" in set(merged["names"].asstr()[:]) and len(merged["names"]) == len(clips)
    log = (run / "results" / "logs" / "faces" / f"shard-{new_shard}.log").read_text()
    assert f"shard-{new_shard}.h5: 1 clips" in log, log[-500:]


def test_dry_run_beside_a_running_workflow_writes_nothing_it_reads(copy_of_demo):
    """A clip added and `snakemake -n` run while a workflow runs on the same results: the
    probe's dry run rewrote clips.csv under the running merge_features, which then failed."""
    run, config, data = copy_of_demo
    inventory = run / "results" / "inventory"
    before = {
        p.relative_to(inventory): (p.stat().st_mtime_ns, p.read_bytes())
        for p in inventory.rglob("*.*")
        if p.name != "stat_cache.csv"  # read by no rule
    }
    donor = sorted((data / "unlabeled").iterdir())[0]
    shutil.copy(donor, data / "unlabeled" / "zz_added.mp4")
    running = claim(run / "results")  # this test process is the running workflow
    jobs = planned(run)  # the plan is still the edit's: one clip extracted
    assert {s: jobs.get(s) for s in STAGES} == dict.fromkeys(STAGES, 1), jobs
    after = {p.relative_to(inventory): (p.stat().st_mtime_ns, p.read_bytes())
             for p in inventory.rglob("*.*") if p.name != "stat_cache.csv"}  # fmt: skip
    assert after == before
    proc = snakemake(run)  # a second workflow is refused, with one line naming the lock
    assert proc.returncode == 4
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("mersemi: error:")]
    assert "in use by another workflow" in line and str(running.path.name) in line, line
    assert not (run / "results" / "features" / "visual" / "shard-0002.h5").exists()
    running.file.close()
    assert planned(run) == jobs  # the workflow is done: the load writes the inventory
    assert "zz_added" in (inventory / "clips.csv").read_text()


def test_removed_clip_leaves_the_merged_features_without_extraction(copy_of_demo):
    run, config, data = copy_of_demo
    gone = sorted((data / "unlabeled").iterdir())[0]
    gone.unlink()
    jobs = planned(run)
    assert not STAGES & jobs.keys(), jobs
    assert jobs["merge_features"] == 3 and jobs["manifest"] == 1
    proc = snakemake(run, "results/features/visual.h5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with h5py.File(run / "results" / "features" / "visual.h5") as f:
        assert gone.stem not in set(f["names"].asstr()[:])


def test_video_fixed_in_place_is_extracted_again(copy_of_demo):
    run, config, data = copy_of_demo
    videos = sorted((data / "unlabeled").iterdir())
    shutil.copy(videos[1], videos[0])  # the "fixed" file replaces the old one
    jobs = planned(run)
    assert {s: jobs.get(s) for s in STAGES} == dict.fromkeys(STAGES, 1), jobs


def test_paths_with_spaces_and_shell_syntax_reach_the_commands_intact(copy_of_demo):
    """A data folder named `my data $(touch PWNED)` and a results folder with a space and the
    same syntax: every rule's shell line (the whole DAG, dry run) keeps each path one intact
    word; the inventory, manifest, model check and an extraction shard run for real, and
    nothing is executed."""
    run, config, data = copy_of_demo
    odd = run / "my data $(touch PWNED)"
    shutil.copytree(data, odd)
    config = json.loads(json.dumps(config))
    for key, value in config["data"].items():
        if isinstance(value, str) and value.startswith("resources/demo"):
            config["data"][key] = value.replace("resources/demo", odd.name, 1)
    results = "results 2 $(touch PWNED)"
    config["results"] = results
    (run / "config.yaml").write_text(yaml.safe_dump(config))

    proc = snakemake(run, "-n", "-p", "--forceall")
    assert proc.returncode == 0, proc.stderr[-3000:]
    shell = [ln.split(": ", 1)[1] for ln in proc.stdout.splitlines() if ln.startswith("Shell co")]
    lines = [ln for ln in shell if ln != "None"]  # rule all has no shell line
    rules = set(re.findall(r"^rule (\w+):", proc.stdout, re.M))
    assert len(lines) == len(shell) - 1 and {"report", "vote", "ablations", "plots"} <= rules
    for line in lines:
        words = [w for w in shlex.split(line) if "PWNED" in w]
        assert words and all(odd.name in w or results in w for w in words), line

    targets = [f"{results}/manifest.csv", f"{results}/audio/shard-0000.csv"]
    proc = snakemake(run, *targets)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = pd.read_csv(run / results / "manifest.csv", keep_default_na=False)
    assert len(manifest) > 0 and manifest["path"].str.contains(odd.name, regex=False).all()
    assert (run / results / "checks" / "audio.txt").is_file()
    assert not list(run.rglob("PWNED")) and not Path("PWNED").exists()
