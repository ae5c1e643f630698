"""Table 1 over seeds in the workflow: `train.seeds` plans one training chain per seed and the
ablations rule reads every seed's rows (a dry run: nothing is trained)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_each_seed_gets_its_own_chain_and_table1_reads_them_all(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["train"]["seeds"] = [0, 7]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--configfile", str(tmp_path / "config.yaml"), "--directory", str(tmp_path),
           "-n", "-p", "--cores", "1", "ablations"]  # fmt: skip
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    # One rule per step with a `{seed}` wildcard (there were rules per seed, `<rule>_seed7`):
    # each step has a job in the first seed's chain and one in seed 7's.
    chains = {}
    for job in out.split("\nrule ")[1:]:
        output = re.search(r"^\s+output: (.*)$", job, re.M).group(1)
        chain = "seed7" if "results/train/seed7/" in output else "first"
        chains.setdefault(job.split(":", 1)[0], set()).add(chain)
    for rule in (
        "baseline",
        "probe",
        "pretrain",
        "finetune_step1",
        "finetune_step2",
        "pseudo_labels",
    ):
        assert chains[rule] == {"first", "seed7"}, rule
    # The second seed trains with its own seed, under train/seed7, and Table 1 reads both.
    assert "results/train/seed7/baseline/predictions.csv" in out and '"seed":7' in out
    table = out[out.index("mersemi train ablations") :].split("\n")[0]
    assert "train/full/step2/vote/metrics.json" in table
    assert "train/seed7/full/step2/vote/metrics.json" in table
    assert "train/seed7/probe/metrics.json" in table
    assert table.count("--row") == 2 * 7  # seven rows of Table 1 (the probe too), two seeds each
