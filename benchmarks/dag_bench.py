"""Time `snakemake -n` over the whole DAG for a 120k-clip dataset (the aim: under 60 s).

Makes a MER2024-sized input tree of empty placeholder videos (5,030 labeled, 115,595
unlabeled), a config pointing at it with the given shard count, and times the dry run.
The Snakefile never reads the manifest when it loads, so the job count scales with shards,
not clips. Writes benchmarks/results/dag_bench.json.

    python benchmarks/dag_bench.py [--shards 240] [--labeled 5030] [--unlabeled 115595]
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("neutral", "angry", "happy", "sad", "worried", "surprise")


def make_tree(root: Path, n_labeled: int, n_unlabeled: int) -> dict:
    (root / "labeled").mkdir(parents=True)
    (root / "unlabeled").mkdir()
    rows = []
    for i in range(n_labeled):
        name = f"sample_{i:08d}"
        (root / "labeled" / f"{name}.mp4").touch()
        rows.append(f"{name},{CLASSES[i % 6]}\n")
    (root / "labels.csv").write_text("name,discrete\n" + "".join(rows))
    for i in range(n_labeled, n_labeled + n_unlabeled):
        (root / "unlabeled" / f"sample_{i:08d}.mp4").touch()
    return {
        "demo": False,
        "labeled_dir": str(root / "labeled"),
        "label_csv": str(root / "labels.csv"),
        "unlabeled_dir": str(root / "unlabeled"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=240)
    ap.add_argument("--labeled", type=int, default=5030)
    ap.add_argument("--unlabeled", type=int, default=115_595)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "dag_bench.json"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        data = make_tree(tmp / "data", args.labeled, args.unlabeled)
        make_s = time.perf_counter() - t0
        cfg = yaml.safe_load((REPO / "config.yaml").read_text())
        cfg["data"] = {**{k: v for k, v in cfg["data"].items() if k == "columns"}, **data}
        cfg["shards"] = args.shards
        cfg["results"] = str(tmp / "results")
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
        cmd = [
            sys.executable, "-m", "snakemake", "-n", "--quiet", "rules",
            "--snakefile", str(REPO / "Snakefile"), "--configfile", str(tmp / "config.yaml"),
            "--directory", str(tmp), "--cores", "1",
        ]  # fmt: skip
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        dry_s = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"snakemake -n failed:\n{proc.stdout}\n{proc.stderr}")
    total = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.M)
    result = {
        "clips": args.labeled + args.unlabeled,
        "shards": args.shards,
        "jobs": int(total.group(1)) if total else None,
        "dry_run_s": round(dry_s, 2),
        "make_placeholders_s": round(make_s, 2),
        "target_s": 60,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
