"""`mersemi check-models`: is every configured model and tool ready, before GPU hours are spent?

    mersemi check-models --configfile config.mer2024.yaml      # every stage and set, one table
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
from dataclasses import replace
from importlib import resources
from pathlib import Path

from .errors import InputError
from .extract.cli import STAGES, stage_module
from .extract.common import stage_section
from .extract.modelcheck import Check, bad, ok
from .featuresets import MODALITIES, feature_sets
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


def check_stage(stage: str, section: dict, where: str | None = None) -> list[Check]:
    """The checks of one stage, given its config section (`where`, default `extract.<stage>`;
    a feature set's `features.<set>.params`)."""
    mod = stage_module(stage)
    where = where or f"extract.{stage}"
    try:
        params = parse_params(mod.Params, section, where)
    except InputError as e:
        section_name = where.removesuffix(".params")
        return [bad(stage, "params", str(e), f"fix the {section_name} section of the config")]
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
    p.add_argument(
        "--configfile", help="workflow config: check every stage's section and feature set"
    )
    p.add_argument("--stage", choices=list(STAGES), help="check one stage (with --params)")
    p.add_argument("--params", help="the stage's config section as JSON (with --stage)")
    p.add_argument("--out", help="also write the table here (only when everything is ready)")
    p.set_defaults(func=_run)


def config_checks(config: dict, only: str | None = None) -> list[Check]:
    """Every stage's checks: the stages without feature sets by their `extract.<stage>`
    section, and each feature set of `features:` (default: one per modality) by its own
    params, its rows named `<modality>:<set>` for a set not named after its modality."""
    extract = config.get("extract") or {}
    try:
        sets = feature_sets(config)
    except InputError as e:
        return [bad("features", "params", str(e), "fix the features: section of the config")]
    checks = []
    for stage in STAGES:
        if only not in (None, stage):
            continue
        if stage not in MODALITIES:
            checks += check_stage(stage, stage_section(extract, stage))
            continue
        for fs in (fs for fs in sets.values() if fs.modality == stage):
            named = fs.name == stage
            where = f"extract.{stage}" if named else f"features.{fs.name}.params"
            found = check_stage(stage, fs.params, where)
            if not named:  # the row and its fix name the set's own config key
                found = [
                    replace(
                        c, stage=f"{stage}:{fs.name}", fix=c.fix.replace(f"extract.{stage}", where)
                    )
                    for c in found
                ]
            checks += found
    return checks


def _run(args) -> int:
    if args.configfile:
        checks = config_checks(load_config(args.configfile), args.stage)
    elif args.stage:
        checks = check_stage(args.stage, json.loads(args.params or "{}"))
    else:
        raise InputError("give --configfile CONFIG, or --stage STAGE --params JSON")
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
