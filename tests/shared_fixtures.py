"""Where the upstream-made fixtures are: `shared/fixtures/<name>` beside the checkout (a main
checkout has it at ../shared, a worktree under wt/ at ../../shared), or $<env_var>.

Outside CI a checkout without them skips the tests that need them. Under CI (`CI` set) a
missing fixture is an error: those tests are what proves the real formats load, and a silent
skip would let CI go green without them."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_fixture(name: str, marker: str, env_var: str) -> Path | None:
    """The fixture folder holding `marker`, or None when this checkout has none (outside CI)."""
    env = os.environ.get(env_var)
    roots = (REPO.parent / "shared", REPO.parent.parent / "shared")
    cands = [Path(env)] if env else [root / "fixtures" / name for root in roots]
    found = next((d for d in cands if (d / marker).is_file()), None)
    if found is None and os.environ.get("CI"):
        looked = ", ".join(str(d) for d in cands)
        raise RuntimeError(f"CI: fixture {name} not found (looked in {looked}; or set {env_var})")
    return found
