"""Build OpenFace `FeatureExtraction` from the fixture, cached outside the checkout.

    python tests/openface_build.py [FIXTURE_DIR]     # prints the binary's path

The fixture (`shared/fixtures/openface`, see its README) is an OpenFace 2.2-era source tree with
the models that ship in OpenFace's repository; its `build.sh BUILD_DIR` builds it with Debian
packages (~3 min on 2 cores). The build goes to
`${XDG_CACHE_HOME:-~/.cache}/mersemi/openface-<hash of the fixture's files>/`, so a second run,
or a second checkout, reuses it; a changed fixture gets a new directory. The Debian packages are
installed with apt only when they are missing (and only as root); `SKIP_APT=1` never installs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from shared_fixtures import shared_fixture

# headers build.sh's apt line installs; all present -> no apt
NEEDED = ("/usr/include/opencv4/opencv2/core.hpp", "/usr/include/dlib/image_processing.h",
          "/usr/include/boost/filesystem.hpp")  # fmt: skip


def fixture_dir() -> Path | None:
    return shared_fixture("openface", "build.sh", "MERSEMI_OPENFACE_FIXTURE")


def fixture_hash(fixture: Path) -> str:
    """sha256 over the relative path and bytes of every file under the fixture (~50 MB, <1 s)."""
    h = hashlib.sha256()
    for f in sorted(p for p in fixture.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(fixture)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cache_dir(fixture: Path) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "mersemi" / f"openface-{fixture_hash(fixture)}"


def binary(build: Path) -> Path:
    return build / "bin" / "FeatureExtraction"


def build(fixture: Path, log=print) -> Path:
    """The cached binary, building it first if needed; returns its path."""
    target = cache_dir(fixture)
    if (target / "DONE").is_file() and binary(target).is_file():
        return binary(target)
    env = dict(os.environ)
    have_deps = all(Path(f).is_file() for f in NEEDED) and shutil.which("cmake")
    if have_deps or os.geteuid() != 0:
        env["SKIP_APT"] = "1"  # non-root: cmake names what is missing
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"building OpenFace from {fixture} into {target} (~3 min)")
    # build beside the target and rename, so an interrupted build never looks finished
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        subprocess.run(["bash", str(fixture / "build.sh"), str(tmp)], check=True, env=env)
        (tmp / "DONE").write_text(str(fixture) + "\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return binary(target)


def built_or_skip() -> Path:
    """For tests: the built FeatureExtraction, or a pytest skip when there is no fixture."""
    import pytest

    fixture = fixture_dir()
    if fixture is None:
        pytest.skip("no OpenFace fixture (shared/fixtures/openface; MERSEMI_OPENFACE_FIXTURE)")
    return build(fixture)


def main(argv: list[str]) -> int:
    try:
        fixture = Path(argv[0]) if argv else fixture_dir()
    except RuntimeError as e:  # under CI a missing fixture fails `make test` here
        print(f"openface_build: {e}", file=sys.stderr)
        return 1
    if fixture is None:  # `make test` on a checkout without the fixture: the tests skip
        print(
            "openface_build: no OpenFace fixture, openface tests will be skipped", file=sys.stderr
        )
        return 0
    if not (fixture / "build.sh").is_file():
        print(f"openface_build: {fixture}: no build.sh (not the OpenFace fixture)", file=sys.stderr)
        return 1
    print(build(fixture, log=lambda m: print(m, file=sys.stderr)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
