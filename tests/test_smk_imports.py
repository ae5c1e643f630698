"""The Snakefile and the rule files reach the package only through its workflow facade,
mersemi.workflow (import-linter reads Python modules, not Snakemake files): the load and its
error handling stay in one package function, under the import contracts."""

import ast
import re
from pathlib import Path

import pytest

import mersemi.workflow

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]

# Every package name a Snakemake file may import: the load, and the names the rules format
# into their paths and `--params` (the shard file stem, code digests, stage and variant names,
# a stage's or a train job's options).
ALLOWED = {
    "mersemi.workflow": {
        "prepare_config",  # Snakefile: --config typed, the schema checked
        "load_run",  # common.smk: the load
        "SHARD_STEM",
        "as_json",
        "code_digest",
        "stage_section",
        "STAGES",  # data.smk
        "SEED",  # train.smk
        "VARIANTS",
        "finetune_flags",
        "train_params",
    }
}


def import_statements(text: str) -> list[ast.stmt]:
    """The import statements of a Snakemake file, each parsed as Python (continuation lines
    joined; rules and shell strings, which are not Python, are never read)."""
    lines = text.splitlines()
    found = []
    i = 0
    while i < len(lines):
        stmt = lines[i].strip()
        if re.match(r"(from|import)\s", stmt):
            while stmt.count("(") > stmt.count(")") or stmt.endswith("\\"):
                i += 1
                stmt = stmt.removesuffix("\\") + " " + lines[i].strip()
            found.append(ast.parse(stmt).body[0])
        i += 1
    return found


def violations(text: str) -> list[str]:
    """The package imports of a Snakemake file that ALLOWED does not list."""
    bad = []
    for node in import_statements(text):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.split(".")[0] == "mersemi"]
        elif node.level or (node.module or "").split(".")[0] == "mersemi":
            module = "." * node.level + (node.module or "")
            allowed = ALLOWED.get(module, set())
            bad += [f"{module}.{a.name}" for a in node.names if a.name not in allowed]
    return bad


@pytest.mark.parametrize("path", SNAKEMAKE_FILES, ids=lambda p: p.name)
def test_snakemake_files_import_only_the_workflow_facade(path):
    assert violations(path.read_text()) == [], f"{path.name}: import these via mersemi.workflow"


def test_the_allowed_names_are_the_facade_s_exports():
    """ALLOWED is mersemi.workflow's __all__, and every name in it is there."""
    assert ALLOWED["mersemi.workflow"] == set(mersemi.workflow.__all__)
    for name in mersemi.workflow.__all__:
        assert hasattr(mersemi.workflow, name), name


def test_the_scan_finds_imports_and_flags_the_others():
    """Not a vacuous pass: the files' imports are found, and any other package import
    (deep, whole-module, multi-line or relative) is flagged."""
    found = {
        f"{n.module}.{a.name}"
        for p in SNAKEMAKE_FILES
        for n in import_statements(p.read_text())
        if isinstance(n, ast.ImportFrom)
        for a in n.names
    }
    assert {f"mersemi.workflow.{name}" for name in ALLOWED["mersemi.workflow"]} <= found
    text = """
rule x:
    shell: "python -m mersemi train"
from mersemi.workflow import (
    load_run,
    Run,
)
import mersemi.inventory
    from mersemi.train.params import VARIANTS
from .errors import one_line
import json
"""
    assert violations(text) == [
        "mersemi.workflow.Run",
        "mersemi.inventory",
        "mersemi.train.params.VARIANTS",
        ".errors.one_line",
    ]
