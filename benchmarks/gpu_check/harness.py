"""The generic part of the GPU check: the parent process runs each part in a child process
(`python -m benchmarks.gpu_check --part NAME`) under its budget, merges the parts' JSON into
the report and prints the table; the child imports the part's module and runs it."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .part import (
    BAICHUAN_LAYERS,
    CARRY,
    FIXTURES,
    OOM_TOLERANCE_REL,
    REAL_VOCAB,
    REPO,
    TOLERANCE,
    Part,
    SkipPart,
    lazy_torch,
)

DEFAULT_OUT = REPO / "benchmarks" / "results" / "gpu_check.json"
DOC = (sys.modules[__package__].__doc__ or "").splitlines()[0]

# part (= its module in this package) -> (modules it needs, budget in s on a GPU, budget in s
# in smoke mode: ~5x what it takes on 2 idle cores, so a busy CI machine still runs every step)
PARTS = {
    "peak": ((), 15, 30),
    "visual": (("open_clip", "PIL"), 50, 45),
    "acoustic": (("transformers",), 45, 45),
    "asr": (("scipy",), 20, 30),
    "text": (("transformers", "sentencepiece", "accelerate"), 85, 45),
    "text_plans": (("transformers", "sentencepiece", "accelerate"), 85, 60),
    # MER2024-size synth alone takes ~30-50 s (single-threaded numpy + 3.4 GB of HDF5)
    "training": (("h5py", "pandas", "sklearn"), 120, 100),
    "slots": ((), 30, 30),
    "families": (("transformers", "h5py", "pandas", "PIL"), 40, 60),
}
PIP = {"open_clip": "open_clip_torch", "PIL": "pillow", "sklearn": "scikit-learn"}
PACKAGES = (
    "torch",
    "transformers",
    "open_clip_torch",
    "accelerate",
    "bitsandbytes",
    "sentencepiece",
    "kaldi-native-fbank",
    "h5py",
    "pandas",
    "scikit-learn",
    "numpy",
    "snakemake",
)


# =========================================================================== child side


def child(args) -> int:
    torch = lazy_torch()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    P = Part(args.part, args)
    dev = torch.device("cuda" if args.device == "cuda" else "cpu")
    t0 = time.perf_counter()
    try:
        importlib.import_module(f"{__package__}.{args.part}").run(P, dev)
        P.res["status"] = "ran"
    except SkipPart as e:
        P.res["status"], P.res["reason"] = "skipped", str(e)
    P.res["seconds"] = time.perf_counter() - t0
    P.save()
    return 0


# =========================================================================== parent side


def versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def missing_modules(mods) -> list[str]:
    hidden = set(filter(None, os.environ.get("MERSEMI_GPU_CHECK_HIDE", "").split(",")))
    return [m for m in mods if m in hidden or importlib.util.find_spec(m) is None]


def run_part(name: str, args, work: Path, budget: float) -> dict:
    part_out = work / f"part-{name}.json"
    logf = work / f"part-{name}.log"
    cmd = [
        sys.executable,
        "-m",
        __package__,
        "--part",
        name,
        "--device",
        args.device,
        "--work",
        str(work),
        "--part-out",
        str(part_out),
        "--threads",
        str(args.threads),
        "--deadline",
        str(time.time() + budget),
    ] + (["--smoke"] if args.smoke else [])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MERSEMI_NO_PROGRESS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(  # the checkout: this package and mersemi
        p for p in [str(REPO), str(REPO / "src"), env.get("PYTHONPATH", "")] if p
    )
    t0 = time.perf_counter()
    with open(logf, "w") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=budget + 15)  # the part stops its own steps at the budget
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            rc = "timeout"
    res = json.loads(part_out.read_text()) if part_out.is_file() else {"rows": [], "details": {}}
    res["seconds"] = time.perf_counter() - t0
    res["budget_s"] = budget
    tail = logf.read_text(errors="replace").splitlines()[-15:] if logf.is_file() else []
    if rc == "timeout":
        res["status"], res["reason"] = "failed", f"killed after its budget of {budget:.0f} s"
    elif rc != 0 or "status" not in res:
        res["status"] = "failed"
        res["reason"] = next((ln for ln in reversed(tail) if ln.strip()), f"exit {rc}")[:500]
    if res["status"] == "failed":
        res["log_tail"] = tail
    return res


def _fmt(v, digits=1) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        if v and (abs(v) >= 1e5 or abs(v) < 10**-digits):
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    return str(v)


def table(report: dict) -> str:
    """One line per measurement; a part that did not run, or a step it skipped, is one line
    saying why."""
    head = ("part", "what", "prec", "batched", "1-at-a-time", "unit", "peak MB", "% peak", "note")
    rows, notes = [head], {}
    for name, part in report["parts"].items():
        for r in part.get("rows", []):
            rows.append(
                (
                    name,
                    r.get("what", ""),
                    r.get("precision", ""),
                    _fmt(r.get("batched")),
                    _fmt(r.get("single")),
                    r.get("unit", ""),
                    _fmt(r.get("peak_gpu_mb"), 0),
                    _fmt(r.get("share_of_peak_pct")),
                    ("NON-FINITE features; " if r.get("finite") is False else "")
                    + r.get("note", ""),
                )
            )
        msgs = [f"{part.get('status', '?')}: {part['reason']}"] if part.get("reason") else []
        msgs += [f"skipped {s}" for s in part.get("skipped_steps", [])]
        if msgs or not part.get("rows"):
            rows.append((name, f"@{len(notes)}", *[""] * 7))
            notes[f"@{len(notes)}"] = msgs or [part.get("status", "?")]
    widths = [
        max(len(str(r[i])) for r in rows if not str(r[1]).startswith("@"))
        for i in range(len(head) - 1)
    ]
    out = []
    for r in rows:
        if str(r[1]).startswith("@"):
            out += [f"{r[0].ljust(widths[0])}  {m}" for m in notes[r[1]]]
            continue
        cells = [str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=True)]
        out.append("  ".join([*cells, str(r[-1])]).rstrip())
    return "\n".join(out)


def parent(args) -> int:
    t_start = time.time()
    if args.device == "auto":
        args.device = "cuda" if _has_cuda() else "cpu"
    for name, (marker, env) in FIXTURES.items():  # carried fixtures, for the child processes
        d = CARRY / "fixtures" / name
        if not os.environ.get(env) and (d / marker).is_file():
            os.environ[env] = str(d)
    parts = [p for p in args.parts.split(",") if p] if args.parts else list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; known: {list(PARTS)}")
    if "peak" not in parts:
        parts.insert(0, "peak")  # every '% peak' needs it
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": " ".join([f"-m {__package__}", *sys.argv[1:]]),
        "mode": "smoke" if args.smoke else "full",
        "device": args.device,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": versions(),
        "budget_s": args.budget,
        "tolerances": {"cpu_vs_device": TOLERANCE, "oom_backoff_rel": OOM_TOLERANCE_REL},
        "scaling": f"text figures at {BAICHUAN_LAYERS} layers; at 40: tokens/s x "
        f"{BAICHUAN_LAYERS}/40, memory + 37 layers' weights and hidden states + the real "
        f"{REAL_VOCAB}-token embedding (scale_to_40)",
        "parts": {},
    }

    def save():
        report["wall_s"] = time.time() - t_start
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, out)

    peak: dict = {}
    with tempfile.TemporaryDirectory(prefix="mersemi-gpu-check-") as tmp:
        work = Path(tmp)
        for k, name in enumerate(parts):
            mods, gpu_budget, smoke_budget = PARTS[name]
            budget = smoke_budget if args.smoke else gpu_budget
            left = args.budget - (time.time() - t_start)
            missing = missing_modules(("torch", *mods))
            if missing:
                pip = ", ".join(PIP.get(m, m) for m in missing)
                res = {
                    "status": "skipped",
                    "reason": f"package(s) missing: {pip} "
                    "(benchmarks/gpu_carry.sh downloads the wheels)",
                    "rows": [],
                }
            elif left < 0.5 * budget:
                res = {
                    "status": "skipped",
                    "rows": [],
                    "reason": f"{left:.0f} s of the "
                    f"{args.budget:.0f} s budget left, the part needs {budget} s",
                }
            else:
                print(
                    f"== {name} ({k + 1}/{len(parts)}, budget {min(budget, left):.0f} s)",
                    flush=True,
                )
                res = run_part(name, args, work, min(budget, left))
                peak |= res.get("details", {}).get("peak_flops", {})
            for r in res.get("rows", []):
                f, prec = r.get("flops_per_s"), (str(r.get("precision", "")).split() or [""])[0]
                if f and peak.get(prec):
                    r["share_of_peak_pct"] = 100 * f / peak[prec]
            report["parts"][name] = res
            print(
                f"   {name}: {res['status']}"
                + (f" ({res['reason']})" if res.get("reason") else "")
                + f", {res.get('seconds', 0):.0f} s",
                flush=True,
            )
            save()
    report["wall_s"] = time.time() - t_start
    save()
    print()
    print(table(report))
    print(f"\nwall {report['wall_s']:.0f} s (budget {args.budget:.0f} s); wrote {out}")
    return 0


def _has_cuda() -> bool:
    code = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog=f"python -m {__package__}", description=DOC)
    ap.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    ap.add_argument("--smoke", action="store_true", help="tiny models and data (CPU test)")
    ap.add_argument("--parts", default="", help=f"comma-separated, of {','.join(PARTS)}")
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="total wall seconds (default 450; 360 with --smoke)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads per part")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    # child-process options (one part)
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--part-out", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads is None:
        args.threads = 2 if args.smoke else min(os.cpu_count() or 1, 16)
    if args.budget is None:
        args.budget = 360.0 if args.smoke else 450.0
    if args.part:
        return child(args)
    return parent(args)
