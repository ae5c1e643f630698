"""A full disk and a read-only results folder, for real (tmpfs mounts): one line naming the
path and the documented exit code, never a traceback, and nothing half written."""

import contextlib
import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers.train_store import SMALL
from helpers.train_store import feature_args as _feat

from mersemi import workflow as facade  # not `workflow`: snakemake.utils.validate reads that global
from mersemi.cli import main
from mersemi.errors import InputError, report_error
from mersemi.runlock import check_writable
from mersemi.workflow import exit_on_user_error

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A tmpfs mounted at `path` (root only: CI and these machines run as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(folder: Path) -> None:
    """Write into `folder` until the file system is full."""
    try:
        with open(folder / "filler", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC


def test_disk_full_while_a_checkpoint_is_saved_is_one_line(store, tmp_path, capsys):
    """torch.save's own writer reported ENOSPC as a RuntimeError without errno: a traceback."""
    with tmpfs(tmp_path / "full", "size=64k") as full:
        fill(full)
        argv = ["train", "pretrain", *_feat(store)[:-1], str(store / "manifest.csv"),
                "--out-checkpoint", str(full / "model.pt"),
                "--out-metrics", str(tmp_path / "m.json"),
                "--params", json.dumps({**SMALL, "epochs": 1})]  # fmt: skip
        assert main(argv) == 3
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("mersemi train: error: disk full")
        assert str(full) in err and "free space" in err
        assert sorted(p.name for p in full.iterdir()) == ["filler"]  # no temp file left


def load(tmp_path, *args, results="results"):
    """`snakemake -n` (and `args`) on the demo config with `results` in tmp_path."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["results"] = results
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--configfile", "config.yaml", "--cores", "1", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)


def error_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("mersemi: error:")]
    return line


def test_read_only_results_folder_stops_at_load_with_one_line(tmp_path):
    with tmpfs(tmp_path / "ro results", "ro,size=64k"):
        proc = load(tmp_path, "-n", results="ro results")
    assert proc.returncode == 4  # the CLI's code for a read-only folder, not 1
    assert "read-only file system writing ro results/" in error_line(proc)


def test_read_only_features_folder_stops_at_load_with_one_line(tmp_path):
    """A read-only mount at results/features: named at load, before any job (the probe saw a
    traceback from Snakemake itself)."""
    (tmp_path / "results" / "features").mkdir(parents=True)
    with tmpfs(tmp_path / "results" / "features", "ro,size=64k"):
        proc = load(tmp_path)
    assert proc.returncode == 4
    line = error_line(proc)
    assert "read-only file system writing results/features;" in line, line


def test_a_full_disk_at_load_exits_3_with_one_line(tmp_path):
    with tmpfs(tmp_path / "results", "size=64k") as full:
        fill(full)
        proc = load(tmp_path, "-n")
    assert proc.returncode == 3
    assert "disk full (no space left on device) writing results/" in error_line(proc)


def test_a_read_only_subfolder_is_found(tmp_path):
    (tmp_path / "results" / "train").mkdir(parents=True)
    check_writable(tmp_path / "results")
    with tmpfs(tmp_path / "results" / "features", "ro,size=64k"), pytest.raises(OSError) as e:
        check_writable(tmp_path / "results")
    assert e.value.errno == errno.EROFS and e.value.filename == str(tmp_path / "results/features")


def test_a_full_inventory_folder_past_the_lock_exits_3_with_one_line(tmp_path):
    """The lock and the writable check pass (an empty file still fits), the inventory's
    write does not: the load's one error handler (mersemi.workflow) names it, exit 3."""
    (tmp_path / "results" / "inventory").mkdir(parents=True)
    with tmpfs(tmp_path / "results" / "inventory", "size=64k") as full:
        fill(full)
        proc = load(tmp_path, "-n")
        assert sorted(p.name for p in full.iterdir()) == ["filler"]  # no temp file left
    assert proc.returncode == 3, proc.stderr[-2000:]
    line = error_line(proc)
    assert "disk full (no space left on device) writing results/inventory/" in line, line
    assert line.endswith("free space, then rerun")


def test_a_read_only_demo_folder_exits_4_with_one_line(tmp_path):
    """The demo's inputs, written when the workflow loads, onto a read-only mount."""
    (tmp_path / "resources" / "demo").mkdir(parents=True)
    with tmpfs(tmp_path / "resources" / "demo", "ro,size=64k"):
        proc = load(tmp_path, "-n")
    assert proc.returncode == 4, proc.stderr[-2000:]
    assert "read-only file system writing resources/demo/" in error_line(proc)


@pytest.mark.parametrize(
    "error, code, said",
    [
        (InputError("labels.csv: row 3: no label"), 2, "labels.csv: row 3: no label"),
        (OSError(errno.ENOSPC, "No space left", "out/x.h5"), 3, "disk full"),
        (OSError(errno.EDQUOT, "Quota", "out/x.h5"), 3, "disk quota exceeded"),
        (OSError(errno.EROFS, "Read-only", "out/x.h5"), 4, "read-only file system"),
        (OSError(errno.EACCES, "Permission denied", "out"), 4, "permission denied"),
        (OSError(errno.ENOENT, "No such file", "out"), None, None),  # a bug: its traceback
        (ValueError("a bug"), None, None),
    ],
)
def test_the_cli_and_the_load_share_one_error_mapping(error, code, said, capsys):
    """errors.report_error is the one copy: `mersemi <command>` returns its code, the
    workflow's load exits with it, and both print the same line (their own prefix)."""
    assert report_error(error, "mersemi train") == code
    err = capsys.readouterr().err
    if code is None:
        assert err == ""
        with pytest.raises(type(error)), exit_on_user_error():
            raise error
        return
    assert err.startswith("mersemi train: error: ") and said in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as e, exit_on_user_error():
        raise error
    assert e.value.code == code
    assert capsys.readouterr().err == err.replace("mersemi train:", "mersemi:")


def test_a_refused_label_csv_at_load_exits_4_not_1(tmp_path, monkeypatch, capsys):
    """Every step of the load is under its one error handler, the label check too (it had
    none for a file-system error: a traceback, exit 1). Root reads any file, so the refusal
    is simulated."""
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["results"] = str(tmp_path / "results")
    validate(config, str(REPO / "src" / "mersemi" / "schemas" / "config.schema.yaml"))

    def refused(clips, label_csv, *args):
        raise PermissionError(errno.EACCES, "Permission denied", str(label_csv))

    monkeypatch.setattr(facade, "_load_inventory", lambda *args: SimpleNamespace(clips=None))
    monkeypatch.setattr(facade, "label_clips", refused)
    with pytest.raises(SystemExit) as e:
        facade.load_run(config, main_process=True)
    assert e.value.code == 4
    err = capsys.readouterr().err.strip()
    assert err == (
        "mersemi: error: permission denied writing resources/demo/labels.csv; "
        "choose a writable folder (`results:`)"
    )


def test_the_load_leaves_no_log_handler_behind(tmp_path, monkeypatch):
    """A second load in one process (a test session) must not repeat the inventory's lines
    or write them to the first load's stream once it has closed (a 'Logging error' traceback
    in a later command's stderr)."""
    import logging

    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["results"] = str(tmp_path / "results")
    validate(config, str(REPO / "src" / "mersemi" / "schemas" / "config.schema.yaml"))
    monkeypatch.setattr(facade, "_load_inventory", lambda *args: SimpleNamespace(shards=[]))
    before = {n: logging.getLogger(n).handlers[:] for n in ("mersemi.inventory", "mersemi.clips")}
    facade.load_run(config, main_process=False)
    after = {n: logging.getLogger(n).handlers[:] for n in before}
    assert after == before
