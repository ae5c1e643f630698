"""A workflow run marked done without running it: every output an empty placeholder, then
`snakemake --touch --forceall`, which records each job's params, code and inputs as a real
run would (benchmarks/dag_bench.py does the same at MER2024's size). A dry run on it then
plans exactly what an edit reruns, in seconds instead of the demo's minutes."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def snakemake(workdir: Path, configfile: Path, *args: str) -> subprocess.CompletedProcess:
    """The repo's Snakefile on `configfile`, `workdir` its working directory."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--configfile", str(configfile), "--directory", str(workdir), "--cores", "1",
           *args]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def mark_done(workdir: Path, configfile: Path) -> None:
    """Create every output of the DAG as a placeholder and record the whole run as done."""
    summary = snakemake(workdir, configfile, "--summary").stdout.splitlines()
    for line in summary[1:]:
        path = workdir / line.split("\t")[0]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # The only outputs without a suffix are directories (the wav folders).
            path.mkdir() if not path.suffix else path.touch()
    snakemake(workdir, configfile, "--touch", "--forceall")


def planned(workdir: Path, configfile: Path, *args: str) -> tuple[dict[str, int], str]:
    """A dry run's jobs per rule, and its output with the shell commands (`-p`)."""
    out = snakemake(workdir, configfile, "-n", "-p", *args).stdout
    table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0] if "Job stats:" in out else ""
    jobs = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    jobs.pop("total", None)
    return jobs, out


def outputs(out: str, rule: str) -> list[str]:
    """The outputs of a dry run's `rule` jobs (each job's `output:` line), sorted."""
    found = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        if re.match(rf"(?:local)?rule {rule}:", block):
            found.append(re.search(r"^\s+output: (.*)$", block, re.M)[1])
    return sorted(found)
