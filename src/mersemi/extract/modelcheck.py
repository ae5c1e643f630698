"""What `mersemi check-models` reports: one `Check` per thing a stage needs.

Each stage module that loads a model (or a tool) defines
    check_model(params) -> list[Check]
which must be cheap (config, tokenizer, weights index, shapes on the meta device or CPU:
seconds to minutes, never a full forward pass of a large model) and must not raise for a
problem the user can fix: it returns a failed `Check` whose `fix` says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    stage: str  # faces | visual | audio | acoustic | asr | text
    item: str  # what was checked: "model_dir", "package sentencepiece", "dim", "ffmpeg", ...
    ok: bool
    detail: str  # what was found (path, dim, version) or the cause of the failure
    fix: str = ""  # one line a person can act on; empty when ok


def ok(stage: str, item: str, detail: str) -> Check:
    return Check(stage, item, True, detail)


def bad(stage: str, item: str, detail: str, fix: str) -> Check:
    return Check(stage, item, False, detail, fix)


def package_check(stage: str, module: str, pip_name: str | None = None) -> Check:
    """Whether `module` imports; the fix names the pip package."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's to fix
        return bad(
            stage,
            f"package {pip_name or module}",
            f"import {module} failed: {type(e).__name__}: {e}",
            f"pip install {pip_name or module} (pinned in pyproject.toml)",
        )
    return ok(stage, f"package {pip_name or module}", getattr(mod, "__version__", "installed"))
