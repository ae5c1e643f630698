"""The slurm profile against a real SLURM: a local single-node cluster (tests/cluster).

Starts slurmctld/slurmd/slurmdbd (+ MariaDB, munge) with tests/cluster/start_slurm.sh,
runs workflows with `snakemake --profile workflow/profiles/slurm` plus a small override
(the local partition and account, resources that fit one small node), checks in `sacct`
that every job ran as a SLURM job and COMPLETED (GPU rules with gres/gpu=1), compares the
outputs with a local run, and stops the cluster.

Runs only as root on a Debian/Ubuntu machine (it apt-get installs slurm-wlm, slurmdbd,
munge, mariadb-server) with snakemake-executor-plugin-slurm installed; skipped otherwise.
Opt out with MERSEMI_SLURM_TEST=0; keep the cluster up afterwards with MERSEMI_SLURM_KEEP=1.
Alone: `pytest -m slurm`.
"""

from __future__ import annotations

import fcntl
import filecmp
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "cluster"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
MARKER = "# written by mersemi tests/cluster/start_slurm.sh"
PARTITION = "demo"
ACCOUNT = "mersemi"
# Per-job resources on the test node (2 CPUs, ~22 GB); the profile's are for real clusters.
TEST_MEM_MB = 2000
TEST_RUNTIME_MIN = 30
# Reductions of the default (demo) config for the cluster run; passed after config.yaml.
DEMO_OVERRIDES = CLUSTER / "demo_overrides.yaml"
# The cluster run stops at the merged features: every extraction stage (the GPU rules among
# them) goes through SLURM, and the outputs compare exactly with a local run. Training is
# covered end to end by tests/test_workflow.py; running it twice more here would double CI.
DEMO_TARGETS = [f"results/features/{m}.h5" for m in ("visual", "acoustic", "text")]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def _skip_reason() -> str | None:
    if os.environ.get("MERSEMI_SLURM_TEST", "1") == "0":
        return "disabled by MERSEMI_SLURM_TEST=0"
    if not sys.platform.startswith("linux"):
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root: tests/cluster/start_slurm.sh apt-get installs and starts SLURM daemons"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "needs a Debian/Ubuntu machine (apt-get) to install slurm-wlm"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm missing: pip install -e '.[slurm]'"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and MARKER not in conf.read_text(errors="replace"):
        return "/etc/slurm/slurm.conf belongs to another SLURM installation; not touching it"
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node cluster for this module; one test run at a time per machine."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    lock_path = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
    with open(lock_path / "mersemi-slurm-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test runs share one cluster
        t0 = time.monotonic()
        start = subprocess.run(
            [str(CLUSTER / "start_slurm.sh")], capture_output=True, text=True, timeout=900
        )
        if start.returncode != 0:
            pytest.fail(f"start_slurm.sh failed:\n{start.stdout}\n{start.stderr}")
        print(f"\nstart_slurm.sh: {time.monotonic() - t0:.1f} s")
        try:
            yield
        finally:
            if os.environ.get("MERSEMI_SLURM_KEEP") != "1":
                subprocess.run([str(CLUSTER / "stop_slurm.sh")], capture_output=True, timeout=300)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Jobs inherit this environment (sbatch --export=ALL): the venv's `mersemi`, `snakemake`.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _profile_overrides() -> list[str]:
    """The small override for the local cluster: partition, account and resources that fit
    the node, keeping every other per-rule setting of the profile (notably gpu: 1)."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    per_rule = []
    for rule, res in profile.get("set-resources", {}).items():
        res = dict(res, mem_mb=TEST_MEM_MB, runtime=TEST_RUNTIME_MIN)
        res.pop("slurm_partition", None)  # one partition here
        per_rule += [f"{rule}:{k}={v}" for k, v in res.items()]
    return [
        "--default-resources",
        f"slurm_partition={PARTITION}",
        f"slurm_account={ACCOUNT}",
        f"runtime={TEST_RUNTIME_MIN}",
        f"mem_mb={TEST_MEM_MB}",
        "--set-resources",
        *per_rule,
        # The profile's defaults suit a busy cluster; poll sooner on an idle one.
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--latency-wait",
        "5",
        "--slurm-keep-successful-logs",
        # sbatch rejects a job asking for more CPUs than the node has.
        "--max-threads",
        str(os.cpu_count() or 1),
    ]


def _snakemake(workdir: Path, args: list[str], timeout: int) -> str:
    cmd = [sys.executable, "-m", "snakemake", "--directory", str(workdir), *args]
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    log = proc.stdout + proc.stderr
    (workdir / "snakemake.out").write_text(log)
    print(f"{' '.join(cmd[3:6])} ...: {time.monotonic() - t0:.1f} s")
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{log[-6000:]}"
    return log


# Job ids restart when slurmctld state is purged; older rows with the same id stay in the DB.
SINCE = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 60))


def _sacct(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """sacct rows by job id; retried briefly, slurmdbd may lag slurmctld by a second."""
    fields = ["JobIDRaw", "State", "ExitCode", "Partition", "Account", "AllocTRES", "Comment"]
    rows: dict[str, dict[str, str]] = {}
    for _ in range(30):
        out = subprocess.run(
            ["sacct", "-X", "-n", "--parsable2", "-S", SINCE, "-j", ",".join(job_ids),
             "-o", ",".join(fields)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        rows = {line.split("|")[0]: dict(zip(fields, line.split("|"), strict=True))
                for line in out.splitlines() if line.strip()}  # fmt: skip
        if set(rows) >= set(job_ids) and all(r["State"] == "COMPLETED" for r in rows.values()):
            break
        time.sleep(1)
    return rows


def _check_slurm_jobs(log: str, expected_rules: set[str], gpu_rules: set[str]) -> dict:
    """Every non-local job went through sbatch and sacct says COMPLETED; GPU rules got one."""
    # The plugin logs to .snakemake/slurm_logs/rule_<name>[/<wildcards>]/<jobid>.log
    submitted = {
        jid: next(p.removeprefix("rule_") for p in Path(path).parts if p.startswith("rule_"))
        for jid, path in SUBMITTED.findall(log)
    }
    assert submitted, f"no job was submitted to SLURM:\n{log[-4000:]}"
    assert set(submitted.values()) == expected_rules, submitted
    rows = _sacct(sorted(submitted))
    table = "\n".join("|".join(r.values()) for r in rows.values())
    print(f"sacct:\n{table}")
    assert set(rows) == set(submitted), f"sacct misses jobs:\n{table}"
    for jid, rule in submitted.items():
        row = rows[jid]
        assert row["State"] == "COMPLETED", f"job {jid} ({rule}): {row}"
        assert row["ExitCode"] == "0:0", row
        assert row["Partition"] == PARTITION and row["Account"] == ACCOUNT, row
        assert rule in row["Comment"], row  # the plugin's --comment names the rule
        assert ("gres/gpu=1" in row["AllocTRES"]) == (rule in gpu_rules), (rule, row)
    return submitted


def _profile_gpu_rules() -> set[str]:
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    return {r for r, res in profile.get("set-resources", {}).items() if res.get("gpu")}


# The inventory records each video's mtime, the checks name tool paths and the results lock
# names the process that held it: all differ between two runs by design.
SKIP_PARTS = {"logs", "benchmarks", ".snakemake", "snakemake.out", "inventory", "checks",
              ".mersemi.lock"}  # fmt: skip


def _same_tree(a: Path, b: Path) -> list[str]:
    """Relative paths whose content differs between two output trees (or exist in one only);
    logs and benchmark timings are expected to differ and are not compared."""
    diffs = []
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    for rel in sorted(files_a | files_b):
        if SKIP_PARTS.intersection(rel.parts):
            continue
        if rel not in files_a or rel not in files_b:
            diffs.append(f"{rel} (only in one run)")
        elif not filecmp.cmp(a / rel, b / rel, shallow=False) and not (
            _h5_equal(a / rel, b / rel) or _json_equal(a / rel, b / rel)
        ):
            diffs.append(str(rel))
    return diffs


def _json_equal(x: Path, y: Path) -> bool:
    """JSON files compare without their provenance (it records the time and host it ran on)."""
    if x.suffix != ".json":
        return False
    import json

    def load(p):
        obj = json.loads(p.read_text(encoding="utf-8"))
        return {k: v for k, v in obj.items() if k != "provenance"} if isinstance(obj, dict) else obj

    return load(x) == load(y)


def _h5_equal(x: Path, y: Path) -> bool:
    """HDF5 files compare by content (datasets and attrs), not bytes."""
    if x.suffix != ".h5":
        return False
    import h5py
    import numpy as np

    with h5py.File(x, "r") as fx, h5py.File(y, "r") as fy:
        names_x, names_y = [], []
        fx.visit(names_x.append)
        fy.visit(names_y.append)

        def attrs(f):  # provenance records the time and device: expected to differ
            return {k: v for k, v in f.attrs.items() if k != "provenance"}

        if sorted(names_x) != sorted(names_y) or attrs(fx) != attrs(fy):
            return False
        for name in names_x:
            ox, oy = fx[name], fy[name]
            if dict(ox.attrs).keys() != dict(oy.attrs).keys():
                return False
            if isinstance(ox, h5py.Dataset):
                vx, vy = ox[()], oy[()]
                if np.issubdtype(np.asarray(vx).dtype, np.floating):
                    if not np.allclose(vx, vy, rtol=1e-5, atol=1e-6, equal_nan=True):
                        return False
                elif not np.array_equal(vx, vy):
                    return False
    return True


def test_smoke_workflow_runs_through_slurm(slurm_cluster, tmp_path):
    """Three CPU jobs and one GPU job through sbatch; outputs equal to a local run."""
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    for d in (on_slurm, local):
        d.mkdir()
    snakefile = ["--snakefile", str(CLUSTER / "smoke" / "Snakefile")]
    log = _snakemake(on_slurm, ["--profile", str(PROFILE), *snakefile, *_profile_overrides()], 600)
    jobs = _check_slurm_jobs(log, {"square", "visual"}, gpu_rules={"visual"})
    assert sorted(jobs.values()).count("square") == 3
    _snakemake(local, ["--cores", "2", *snakefile], 300)
    assert (on_slurm / "out" / "summary.txt").read_text() == "5\n"
    assert _same_tree(on_slurm / "out", local / "out") == []


def test_demo_workflow_runs_through_slurm(slurm_cluster, tmp_path):
    """The repository's workflow on the demo config (reduced by tests/cluster/demo_overrides.yaml)
    through the slurm profile; same results as a local run with the local profile."""
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    for d in (on_slurm, local):
        d.mkdir()
    common = [
        *DEMO_TARGETS,  # before --configfile, which takes every path that follows it
        "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(REPO / "config.yaml"), str(DEMO_OVERRIDES),
    ]  # fmt: skip
    log = _snakemake(on_slurm, ["--profile", str(PROFILE), *common, *_profile_overrides()], 2400)
    # Which rules ran is the workflow's business; that each ran on SLURM is ours.
    rules = set(re.findall(r"^rule (\w+):", log, flags=re.M))
    jobs = _check_slurm_jobs(log, rules, gpu_rules=_profile_gpu_rules() & rules)
    print(f"{len(jobs)} SLURM jobs: {sorted(set(jobs.values()))}")
    _snakemake(local, ["--profile", str(REPO / "workflow" / "profiles" / "local"), *common], 2400)
    diffs = _same_tree(on_slurm / "results", local / "results")
    assert diffs == [], f"SLURM and local results differ: {diffs}"
