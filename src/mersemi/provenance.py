"""What produced an output: code version and commit, the options' hash, package versions and
the device. Recorded in every feature file (HDF5 attr `provenance`) and metrics JSON (key
`provenance`), and shown in the report.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from . import __version__

PACKAGES = ("torch", "transformers", "open_clip_torch", "h5py", "numpy", "scikit-learn")
CHECKOUT = Path(__file__).resolve().parents[2]


def params_hash(params: Mapping | None) -> str | None:
    """sha256 of the options as canonical JSON (the same options give the same hash)."""
    if params is None:
        return None
    text = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def model_revision(model: str) -> str:
    """Which weights a feature file came from, as a short hash: a model folder by the sha256
    of its `config.json` (the Hugging Face layout; else of its file names and sizes); a torch
    zip checkpoint by its records' names, CRC-32s and sizes (the zip's own directory: every
    byte of the weights, read without reading GBs); any other file by its size and the sha256
    of its first MiB; "" for a name that is not a local path (an open_clip tag)."""
    path = Path(model)
    h = hashlib.sha256()
    if (path / "config.json").is_file():
        h.update((path / "config.json").read_bytes())
        return f"config.json sha256 {h.hexdigest()[:12]}"
    if path.is_dir():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(path)}\0{f.stat().st_size}\n".encode())
        return f"listing sha256 {h.hexdigest()[:12]}"
    if path.is_file() and zipfile.is_zipfile(path):
        # torch.save names its records <file stem at save time>/...: drop that folder, so
        # the same weights saved under a temp name (or renamed) keep their revision.
        with zipfile.ZipFile(path) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename.partition("/")[2]):
                h.update(
                    f"{info.filename.partition('/')[2]}\0{info.CRC}\0{info.file_size}\n".encode()
                )
        return f"zip records sha256 {h.hexdigest()[:12]}"
    if path.is_file():
        with path.open("rb") as fh:
            h.update(fh.read(1 << 20))
        return f"{path.stat().st_size} bytes, head sha256 {h.hexdigest()[:12]}"
    return ""


@functools.cache
def git_state() -> dict:
    """Commit and dirty flag of the checkout this code runs from (empty when installed)."""
    if not (CHECKOUT / ".git").exists():
        return {}
    try:

        def git(*args):
            return subprocess.run(["git", "-C", str(CHECKOUT), *args], capture_output=True,
                                  text=True, timeout=10, check=True).stdout.strip()  # fmt: skip

        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "src"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit, "git_dirty": dirty}


@functools.cache
def package_versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_name() -> str:
    """The GPU this process uses, if it has imported torch and has one; else 'cpu'."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        i = torch.cuda.current_device()
        return f"cuda:{i} {torch.cuda.get_device_name(i)}"
    return "cpu"


def provenance(params: Mapping | None = None) -> dict:
    return {
        "mersemi": __version__,
        **git_state(),
        "params_sha256": params_hash(params),
        "packages": package_versions(),
        "python": platform.python_version(),
        "device": device_name(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
