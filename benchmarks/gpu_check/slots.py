"""slots: two concurrent GPU jobs through mersemi.gpu, as the machine is and with
MERSEMI_GPUS=0,0 (one slot: the second waits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .part import REPO, Part

SLOT_JOB = r"""
import json, os, sys, time
t_start = time.time()
from mersemi.gpu import claim_gpu
gpu = claim_gpu(poll=0.2)
t_claimed = time.time()
open(sys.argv[1], "w").write("claimed")
import torch
name = "cpu"
if torch.cuda.is_available():
    a = torch.randn(4096, 4096, device="cuda")
    end = time.time() + float(sys.argv[2])
    while time.time() < end:
        a = (a @ a).clamp_(-1, 1)
    torch.cuda.synchronize()
    name = torch.cuda.get_device_name(0)
else:
    time.sleep(float(sys.argv[2]))
print(json.dumps({"slot": gpu, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "device": name,
                  "start": t_start, "claimed": t_claimed, "done": time.time()}))
"""


def run(P: Part, dev) -> None:
    work = Path(P.args.work) / "slots"
    work.mkdir(parents=True, exist_ok=True)
    hold = 1.0 if P.args.smoke else 2.0
    env0 = {
        **os.environ,
        "MERSEMI_GPU_LOCK_DIR": str(work / "locks"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    env0.pop("SLURM_JOB_ID", None)
    env0.pop("MERSEMI_GPU_SLOTS", None)
    variants = {"as configured": {}, "MERSEMI_GPUS=0,0": {"MERSEMI_GPUS": "0,0"}}
    if dev.type == "cpu":  # no GPU: CUDA_VISIBLE_DEVICES would say which one a job got
        env0.pop("MERSEMI_GPUS", None)
    for name, extra in variants.items():
        env = {**env0, **extra}
        if not extra:
            env.pop("MERSEMI_GPUS", None)
        marks = [work / f"{name[:2]}-{k}.claimed".replace(" ", "_") for k in range(2)]
        first = subprocess.Popen(
            [sys.executable, "-c", SLOT_JOB, str(marks[0]), str(hold)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        t_end = time.time() + 60
        while not marks[0].exists() and first.poll() is None and time.time() < t_end:
            time.sleep(0.05)
        second = subprocess.Popen(
            [sys.executable, "-c", SLOT_JOB, str(marks[1]), str(hold)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        jobs = []
        for p in (first, second):
            stdout, _ = p.communicate(timeout=max(P.left(), 5))
            jobs.append(
                json.loads(stdout.strip().splitlines()[-1])
                if p.returncode == 0
                else {"error": f"exit {p.returncode}"}
            )
        a, b = jobs
        if "error" in a or "error" in b:
            P.row(what=f"slots {name}", unit="", note=f"a job failed: {a} {b}")
            continue
        waited = b["claimed"] >= a["done"] - 0.05
        P.detail(
            f"slots {name}",
            {"jobs": jobs, "second_waited": waited, "second_wait_s": b["claimed"] - b["start"]},
        )
        P.row(
            what=f"slots {name}",
            batched=b["claimed"] - b["start"],
            unit="s waited (2nd)",
            note=f"slots {a['slot']}/{b['slot']}, CUDA_VISIBLE_DEVICES {a['visible']}/"
            f"{b['visible']}, {a['device']}; second "
            + ("waited for the first to exit" if waited else "ran alongside the first"),
        )
