"""Where the upstream-made fixtures are: `shared/fixtures/<name>` beside the checkout (a main
checkout has it at ../shared, a worktree under wt/ at ../../shared), or $<env_var>."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_fixture(name: str, marker: str, env_var: str) -> Path | None:
    """The fixture folder holding `marker`, or None when this checkout has none."""
    env = os.environ.get(env_var)
    roots = (REPO.parent / "shared", REPO.parent.parent / "shared")
    cands = [Path(env)] if env else [root / "fixtures" / name for root in roots]
    return next((d for d in cands if (d / marker).is_file()), None)
