"""The code stays in small modules (docs/layout.md): none in src/ or benchmarks/ over 400 lines."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT = 400


def test_no_module_is_over_400_lines():
    sizes = {
        p.relative_to(REPO).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for folder in ("src", "benchmarks")
        for p in (REPO / folder).rglob("*.py")
    }
    assert sizes, "no modules found"
    too_long = {path: n for path, n in sizes.items() if n > LIMIT}
    assert not too_long, f"modules over {LIMIT} lines (split them): {too_long}"
