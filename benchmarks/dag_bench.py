"""What `snakemake -n` plans after routine data edits on a 120k-clip dataset, and how fast.

Makes a MER2024-sized input tree of empty placeholder videos (5,030 labeled, 115,595
unlabeled, 1,169 of them with test labels; a transcript for every clip), plans the whole DAG,
marks every output done (`snakemake --touch` over placeholder outputs, so Snakemake records
its params and code), then applies each edit to that complete run and records the planning
time, the jobs planned per rule and the clips the planned extraction jobs would process
(the rows of their shard files). Each edit is undone before the next. Writes
benchmarks/results/dag_bench.json and prints a Markdown table (the README's).

`--sets-per-modality N` plans N feature sets per modality (config `features:`; the first of
each is today's set, the others `<modality>_2`, ... with the same stage params), and adds two
edits: a set added to the finished run, and one added set's params changed.

First, what the first inventory of such a tree costs with real bytes: the fingerprint hashes
every file whose stat is new. It times `update_inventory` on a sample of `--clip-kb` random
files (warm, just written; and cold, after dropping the page cache where the machine allows)
and scales the time per clip to the whole tree; a second load (stat cache) reads nothing.

    PYTHONPATH=src python benchmarks/dag_bench.py [--shards 240] [--labeled 5030]
        [--unlabeled 115595] [--sample 2000] [--clip-kb 363] [--inventory-only]
        [--sets-per-modality 2]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("neutral", "angry", "happy", "sad", "worried", "surprise")
EXTRACTION = ("faces", "audio", "asr", "visual", "acoustic", "text")
MODALITIES = ("visual", "acoustic", "text")


def feature_sets(extract: dict, per_modality: int) -> dict:
    """`per_modality` sets of each modality: today's (its extract section) and copies of it."""
    sets = {m: {"modality": m} for m in MODALITIES}
    for k in range(2, per_modality + 1):
        for m in MODALITIES:
            sets[f"{m}_{k}"] = {"modality": m, "params": dict(extract.get(m) or {})}
    return sets


def make_tree(root: Path, n_labeled: int, n_unlabeled: int) -> dict:
    (root / "labeled").mkdir(parents=True)
    (root / "unlabeled").mkdir()
    labels, tests, texts = [], [], []
    for i in range(n_labeled + n_unlabeled):
        name = f"sample_{i:08d}"
        folder = "labeled" if i < n_labeled else "unlabeled"
        (root / folder / f"{name}.mp4").touch()
        texts.append(f"{name},句子{i}\n")
        if i < n_labeled:
            labels.append(f"{name},{CLASSES[i % 6]}\n")
        elif i % 100 == 0:
            tests.append(f"{name},{CLASSES[i % 6]}\n")
    (root / "labels.csv").write_text("name,discrete\n" + "".join(labels))
    (root / "test_labels.csv").write_text("name,discrete\n" + "".join(tests))
    (root / "transcripts.csv").write_text("name,chinese\n" + "".join(texts), encoding="utf-8")
    return {
        "demo": False,
        "labeled_dir": str(root / "labeled"),
        "label_csv": str(root / "labels.csv"),
        "unlabeled_dir": str(root / "unlabeled"),
        "test_label_csv": str(root / "test_labels.csv"),
        "transcript_csv": str(root / "transcripts.csv"),
    }


class Run:
    def __init__(self, tmp: Path, config: dict):
        self.tmp = tmp
        self.config = config
        self.write_config(config)

    def write_config(self, config: dict) -> None:
        (self.tmp / "config.yaml").write_text(yaml.safe_dump(config))

    def snakemake(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--configfile", str(self.tmp / "config.yaml"), "--directory", str(self.tmp),
               "--cores", "1", *args]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.tmp)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def plan(self) -> tuple[dict[str, int], float, list[str]]:
        """Rule -> planned job count, planning seconds, and the planned extraction shards."""
        t0 = time.perf_counter()
        proc = self.snakemake("-n", "--quiet", "rules")
        seconds = time.perf_counter() - t0
        jobs = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", proc.stdout, re.M)}
        jobs.pop("total", None)
        detail = self.snakemake("-n", "--printshellcmds").stdout
        shards = re.findall(r"mersemi extract (\w+) --shard \S*shard-(\w+)\.csv", detail)
        return jobs, seconds, shards

    def clips_in(self, shard: str) -> int:
        path = self.tmp / "results" / "inventory" / f"shard-{shard}.csv"
        return sum(1 for _ in path.open()) - 1

    def touch_all(self) -> None:
        """Create every missing output as an empty placeholder, then let Snakemake mark the
        whole DAG done (`--touch` records params and code as a real run would)."""
        summary = self.snakemake("--summary").stdout.splitlines()
        for line in summary[1:]:
            path = self.tmp / line.split("\t")[0]
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                # The only outputs without a suffix are directories (the wav folders).
                path.mkdir() if not path.suffix else path.touch()
        self.snakemake("--touch", "--forceall")  # a plain --touch misses some records


def drop_page_cache() -> bool:
    """Drop the page cache (root on Linux), so the next read comes from the disk."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def first_inventory(tmp: Path, sample: int, clip_kb: int, total: int, shards: int) -> dict:
    """Seconds a first inventory takes per clip of `clip_kb` (hashing every byte), scaled to
    `total` clips, and a second load's, whose stat cache spares every read."""
    from mersemi.inventory import update_inventory

    folder = tmp / "sized" / "unlabeled"
    folder.mkdir(parents=True)
    for i in range(sample):
        (folder / f"clip_{i:06d}.mp4").write_bytes(os.urandom(clip_kb * 1024))
    runs = {}
    for what in ("warm", "cold", "stat cache"):
        if what != "stat cache":
            shutil.rmtree(tmp / "sized" / "inventory", ignore_errors=True)
        if what == "cold" and not drop_page_cache():
            continue
        t0 = time.perf_counter()
        update_inventory(tmp / "sized" / "inventory", {"unlabeled": folder}, shards)
        runs[what] = time.perf_counter() - t0
    mb = sample * clip_kb / 1024
    return {
        "sample_clips": sample,
        "clip_kb": clip_kb,
        "clips": total,
        **{f"{k}_s_per_1000_clips": round(v / sample * 1000, 3) for k, v in runs.items()},
        **{f"{k}_s_for_all_clips": round(v / sample * total, 1) for k, v in runs.items()},
        **{f"{k}_MB_per_s": round(mb / v) for k, v in runs.items() if k != "stat cache"},
    }


def edit_file(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=240)
    ap.add_argument("--labeled", type=int, default=5030)
    ap.add_argument("--unlabeled", type=int, default=115_595)
    ap.add_argument("--sample", type=int, default=2000, help="clips of real bytes hashed")
    ap.add_argument("--clip-kb", type=int, default=363, help="size of each (the probe's clip)")
    ap.add_argument("--inventory-only", action="store_true", help="skip the DAG plans")
    ap.add_argument("--sets-per-modality", type=int, default=1, help="feature sets of each")
    ap.add_argument("--out", help="default benchmarks/results/dag_bench[_sets<N>].json")
    args = ap.parse_args()
    sets = args.sets_per_modality
    args.out = args.out or str(
        REPO / "benchmarks" / "results" / f"dag_bench{f'_sets{sets}' if sets > 1 else ''}.json"
    )
    total = args.labeled + args.unlabeled

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inventory = first_inventory(tmp, args.sample, args.clip_kb, total, args.shards)
        print("first inventory", json.dumps(inventory), flush=True)
        out = Path(args.out)
        if args.inventory_only:
            out = out.with_name(out.stem + "_inventory.json")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"first_inventory": inventory}, indent=2) + "\n")
            return
        data = make_tree(tmp / "data", args.labeled, args.unlabeled)
        cfg = yaml.safe_load((REPO / "config.yaml").read_text())
        cfg["data"] = {"columns": cfg["data"]["columns"], **data}
        cfg["shards"] = args.shards
        cfg["results"] = str(tmp / "results")
        if sets > 1:
            cfg["features"] = feature_sets(cfg["extract"], sets)
        run = Run(tmp, cfg)
        first, first_s, _ = run.plan()
        run.touch_all()
        done, _, _ = run.plan()
        assert not done, f"after --touch, still planned: {done}"
        user = tmp / "data"
        unl = user / "unlabeled"
        first_unl = args.labeled  # index of the first unlabeled clip
        names = [f"sample_{i:08d}" for i in range(first_unl, first_unl + 100)]

        def add():
            for i in range(100):
                (unl / f"new_{i:05d}.mp4").touch()

        def undo_add():
            for i in range(100):
                (unl / f"new_{i:05d}.mp4").unlink()

        def remove():
            for n in names:
                (unl / f"{n}.mp4").rename(tmp / f"{n}.mp4")

        def undo_remove():
            for n in names:
                (tmp / f"{n}.mp4").rename(unl / f"{n}.mp4")

        def params(on: bool):
            edited = yaml.safe_load(yaml.safe_dump(cfg))
            if on:
                edited["extract"]["text"]["max_tokens"] = 64
            run.write_config(edited)

        def set_added(on: bool):
            edited = yaml.safe_load(yaml.safe_dump(cfg))
            if on:
                edited["features"] = edited.get("features") or feature_sets(cfg["extract"], 1)
                edited["features"]["visual_new"] = {
                    "modality": "visual",
                    "params": {**cfg["extract"]["visual"], "batch_size": 32},
                }
            run.write_config(edited)

        def set_params(on: bool):
            edited = yaml.safe_load(yaml.safe_dump(cfg))
            if on:
                edited["features"]["acoustic_2"]["params"]["chunk_seconds"] = 5
            run.write_config(edited)

        label = ("sample_00000000,neutral", "sample_00000000,happy")
        text = (f"sample_{first_unl:08d},句子{first_unl}", f"sample_{first_unl:08d},改过的句子")
        edits = {
            "one label changed": (
                lambda: edit_file(user / "labels.csv", *label),
                lambda: edit_file(user / "labels.csv", *reversed(label)),
            ),
            "one transcript changed": (
                lambda: edit_file(user / "transcripts.csv", *text),
                lambda: edit_file(user / "transcripts.csv", *reversed(text)),
            ),
            "100 clips added": (add, undo_add),
            "100 clips removed": (remove, undo_remove),
            "one stage's params changed (text)": (lambda: params(True), lambda: params(False)),
            "one feature set added (visual)": (lambda: set_added(True), lambda: set_added(False)),
        }
        if sets > 1:
            edits["one set's params changed (acoustic_2)"] = (
                lambda: set_params(True),
                lambda: set_params(False),
            )
        results = {}
        for what, (apply, undo) in edits.items():
            saved = tmp / "saved"
            shutil.copytree(tmp / "results" / "inventory", saved)
            user_files = {p: p.stat() for p in user.glob("*.csv")}
            apply()
            jobs, seconds, shards = run.plan()
            results[what] = {
                "plan_s": round(seconds, 1),
                "jobs": jobs,
                "extraction_jobs": sum(jobs.get(r, 0) for r in EXTRACTION),
                "clips_extracted": {
                    stage: sum(run.clips_in(s) for st, s in shards if st == stage)
                    for stage in EXTRACTION
                },
            }
            undo()
            for p, st in user_files.items():  # undo the edit's timestamps too
                os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
            shutil.rmtree(tmp / "results" / "inventory")
            shutil.move(saved, tmp / "results" / "inventory")
            print(what, json.dumps(results[what]), flush=True)

    result = {
        "clips": args.labeled + args.unlabeled,
        "shards": args.shards,
        "sets_per_modality": sets,
        "full_run": {"plan_s": round(first_s, 1), "jobs": sum(first.values())},
        "first_inventory": inventory,
        "edits": results,
        "target_plan_s": 60,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    full = result["full_run"]
    print(f"\n{result['clips']} clips, {args.shards} shards, {sets} feature set(s) per modality; "
          f"full DAG: {full['jobs']} jobs planned in {full['plan_s']} s\n")  # fmt: skip
    print("| edit | plan (s) | extraction jobs | clips extracted per stage | other jobs |")
    print("|---|---|---|---|---|")
    for what, r in results.items():
        clips = ", ".join(f"{k} {v}" for k, v in r["clips_extracted"].items() if v) or "0"
        other = ", ".join(f"{k} {v}" for k, v in r["jobs"].items() if k not in EXTRACTION)
        print(f"| {what} | {r['plan_s']} | {r['extraction_jobs']} | {clips} | {other} |")


if __name__ == "__main__":
    main()
