"""`mersemi check-models`: is every configured model and tool ready, before GPU hours are spent?

    mersemi check-models --configfile config.mer2024.yaml      # every stage, one table
    mersemi check-models --stage text --params JSON --out F    # one stage (a workflow rule)

Each stage module's `check_model(params)` loads what is cheap to load (configs, tokenizers,
weights indexes, shapes; see `extract/modelcheck.py`); the stages that decode video also
need ffmpeg. The table says what is ready, what is missing and how to fix it; the exit code
is 2 when anything is missing, so the workflow stops on the login node, before any job is
queued for a GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

from .errors import InputError
from .extract.cli import STAGES, stage_module
from .extract.common import stage_section
from .extract.modelcheck import Check, bad, ok
from .params import parse_params

# Package data, so an installed mersemi finds it too; the Snakefile validates with this file.
SCHEMA = resources.files("mersemi") / "schemas" / "config.schema.yaml"
DECODES_VIDEO = ("faces", "audio")


def ffmpeg_check(stage: str) -> Check:
    from .ffmpeg_bin import ffmpeg_exe

    try:
        exe = ffmpeg_exe()
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30)
        version = " ".join(out.stdout.split()[:3])
        if out.returncode != 0:
            raise OSError(out.stderr.strip()[-200:])
    except Exception as e:  # noqa: BLE001 - any failure means no usable ffmpeg
        return bad(stage, "ffmpeg", f"{type(e).__name__}: {e}", "pip install imageio-ffmpeg, "
                   "or put ffmpeg on PATH, or set MERSEMI_FFMPEG")  # fmt: skip
    return ok(stage, "ffmpeg", f"{exe} ({version})")


def check_stage(stage: str, section: dict) -> list[Check]:
    """The checks of one stage, given its config section (`extract.<stage>`)."""
    mod = stage_module(stage)
    try:
        params = parse_params(mod.Params, section, f"extract.{stage}")
    except InputError as e:
        return [bad(stage, "params", str(e), f"fix the extract.{stage} section of the config")]
    checks = [ffmpeg_check(stage)] if stage in DECODES_VIDEO else []
    check_model = getattr(mod, "check_model", None)
    if check_model is not None:
        try:
            checks += check_model(params)
        except Exception as e:  # noqa: BLE001 - a check must report, not crash
            checks.append(bad(stage, "model", f"{type(e).__name__}: {e}", "see the stage's docs"))
    return checks or [ok(stage, "model", "no model to load")]


def table(checks: list[Check]) -> str:
    """A plain-text table, one line a check; failures carry their fix."""
    rows = [("stage", "item", "status", "detail / fix")]
    for c in checks:
        rows.append((c.stage, c.item, "ok" if c.ok else "MISSING", c.detail if c.ok else
                     f"{c.detail} -> {c.fix}"))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows)


def load_config(path: str) -> dict:
    import yaml
    from snakemake.utils import validate

    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise InputError(f"config {path}: cannot read ({e})") from None
    try:
        with resources.as_file(SCHEMA) as schema:
            validate(config, str(schema))
    except Exception as e:  # noqa: BLE001 - snakemake's WorkflowError carries the message
        raise InputError(f"config {path}: {str(e).splitlines()[0]}") from None
    return config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-models", help="check every configured model and tool (fast)")
    p.add_argument("--configfile", help="workflow config: check every stage's section")
    p.add_argument("--stage", choices=list(STAGES), help="check one stage (with --params)")
    p.add_argument("--params", help="the stage's config section as JSON (with --stage)")
    p.add_argument("--out", help="also write the table here (only when everything is ready)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    if args.configfile:
        extract = load_config(args.configfile)["extract"]
        stages = [args.stage] if args.stage else list(STAGES)
        sections = {s: stage_section(extract, s) for s in stages}
    elif args.stage:
        sections = {args.stage: json.loads(args.params or "{}")}
    else:
        raise InputError("give --configfile CONFIG, or --stage STAGE --params JSON")
    checks = [c for stage, section in sections.items() for c in check_stage(stage, section)]
    text = table(checks)
    print(text, file=sys.stderr)
    failed = [c for c in checks if not c.ok]
    if failed:
        for c in failed:
            print(f"mersemi check-models: {c.stage}: {c.item}: {c.detail} -> {c.fix}",
                  file=sys.stderr)  # fmt: skip
        return 2
    if args.out:
        from .atomic import atomic_path

        with atomic_path(args.out) as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    return 0
