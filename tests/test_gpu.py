"""One GPU per job: concurrent jobs on a (pretend) 3-GPU machine each see a different device;
a fourth waits for a free one; SLURM's own assignment is left alone."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

JOB = """
import os, sys, time
from pathlib import Path
from mersemi.gpu import claim_gpu
gpu = claim_gpu(poll=0.1)
folder = Path(sys.argv[1])
(folder / f"job{sys.argv[2]}.gpu").write_text(f"{gpu} {os.environ['CUDA_VISIBLE_DEVICES']}")
while not (folder / f"release{sys.argv[2]}").exists():
    time.sleep(0.05)
"""


def start(tmp_path: Path, k: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", JOB, str(tmp_path), str(k)], env=env)


def wait_for(path: Path, procs, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert all(p.poll() is None for p in procs), "a job died"
        assert time.monotonic() < deadline, f"{path.name} never written"
        time.sleep(0.05)
    return path.read_text()


def test_concurrent_jobs_get_distinct_gpus_and_a_freed_one_is_reused(tmp_path):
    env = {**os.environ, "MERSEMI_GPUS": "0,1,2", "MERSEMI_GPU_LOCK_DIR": str(tmp_path / "locks")}
    env.pop("SLURM_JOB_ID", None)
    procs = [start(tmp_path, k, env) for k in range(3)]
    seen = [wait_for(tmp_path / f"job{k}.gpu", procs).split() for k in range(3)]
    assert all(gpu == visible for gpu, visible in seen)  # CUDA_VISIBLE_DEVICES is that GPU
    assert sorted(gpu for gpu, _ in seen) == ["0", "1", "2"]

    fourth = start(tmp_path, 3, env)
    procs.append(fourth)
    time.sleep(1.0)
    assert not (tmp_path / "job3.gpu").exists()  # every GPU is held: it waits
    (tmp_path / "release1").touch()
    procs[1].wait(timeout=30)
    assert wait_for(tmp_path / "job3.gpu", [fourth]).split() == seen[1]  # the freed GPU
    for k in (0, 2, 3):
        (tmp_path / f"release{k}").touch()
    for p in procs:
        assert p.wait(timeout=30) == 0


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "5"}, "None 5"),  # SLURM's choice
        ({"CUDA_VISIBLE_DEVICES": "4,6"}, "4 4"),  # chosen among the GPUs the user allowed
        ({"MERSEMI_GPUS": "0,1", "MERSEMI_GPU_SLOTS": "0", "CUDA_VISIBLE_DEVICES": "0,1"},
         "None 0,1"),  # turned off
    ],
)  # fmt: skip
def test_slurm_and_user_settings_are_respected(tmp_path, extra, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "MERSEMI_GPUS")}
    env |= {"MERSEMI_GPU_LOCK_DIR": str(tmp_path / "locks"), **extra}
    (tmp_path / "release0").touch()
    subprocess.run([sys.executable, "-c", JOB, str(tmp_path), "0"], env=env, check=True)
    assert (tmp_path / "job0.gpu").read_text() == expected
