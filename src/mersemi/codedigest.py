"""Digest of a mersemi module and every mersemi module it imports, read from the source.

Workflow rules pass this as a param, so editing a stage's code (or a helper it imports) reruns
that stage: Snakemake's own code trigger sees only the rule's shell line. The imports are
found with `ast` (nothing is imported, so the Snakefile stays fast to load).
"""

import ast
import hashlib
from pathlib import Path

PACKAGE = "mersemi"
ROOT = Path(__file__).parent


def _module_file(module: str) -> Path | None:
    parts = module.split(".")[1:]
    if not parts:
        return ROOT / "__init__.py"
    rel = Path(*parts)
    for candidate in (ROOT / rel.with_suffix(".py"), ROOT / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str, path: Path) -> set[str]:
    """mersemi modules imported anywhere in `path` (module level or inside functions)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == PACKAGE:
                target = node.module
            else:
                continue
            found.add(target)
            # `from . import x` and `from .pkg import mod` may name submodules.
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if _module_file(m)}


def module_closure(*modules: str) -> list[Path]:
    """Source files of `modules` and of every mersemi module they import, transitively."""
    todo, seen = list(modules), {}
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _module_file(module)
        if path is None:
            raise ValueError(f"no source file for module {module!r}")
        seen[module] = path
        todo.extend(_imports(module, path))
    return sorted(set(seen.values()))


def code_digest(*modules: str) -> str:
    """sha256 (16 hex) over the source of `modules` and their mersemi imports."""
    h = hashlib.sha256()
    for path in module_closure(*modules):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
