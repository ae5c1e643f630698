"""The GPU check (benchmarks/gpu_check/) in its CPU smoke mode, through its wrapper, so the
script cannot rot between GPU loans: every part runs or says why not, and the JSON has the
structure docs/gpus.md describes. The figures themselves are CPU noise and not checked."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# benchmarks/gpu_check/harness.py's PARTS, in its order (the table in docs/gpus.md)
PARTS = ["peak", "visual", "acoustic", "asr", "text", "text_plans", "training", "slots", "families"]
ROW_KEYS = {"what", "unit"}


def run_check(tmp_path: Path, *args: str, env_extra: dict | None = None) -> dict:
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHON": sys.executable, **(env_extra or {})}
    proc = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--smoke",
         "--out", str(out), *args],
        env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    report["_stdout"] = proc.stdout
    return report


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict:
    return run_check(tmp_path_factory.mktemp("gpu-check"))


def test_every_part_ran_or_says_why(smoke):
    assert smoke["mode"] == "smoke" and smoke["device"] == "cpu"
    assert list(smoke["parts"]) == PARTS
    for name, part in smoke["parts"].items():
        assert part["status"] in ("ran", "skipped"), (name, part.get("reason"), part)
        if part["status"] == "skipped":
            assert part["reason"], name
        else:
            assert part["rows"], name
            assert all(set(r) >= ROW_KEYS for r in part["rows"]), name
        for step in part.get("skipped_steps", []):
            assert ":" in step, (name, step)  # "what: why"
    # ~40 s on 2 idle cores; the budget is what a loaded machine may take
    assert smoke["wall_s"] <= smoke["budget_s"]
    assert {"torch", "transformers", "bitsandbytes"} <= set(smoke["packages"])


def test_the_table_has_a_line_per_measurement_and_per_skip(smoke):
    table = smoke["_stdout"].split("\npart ", 1)[1]
    for name, part in smoke["parts"].items():
        lines = [ln for ln in table.splitlines() if ln.startswith(name + " ")]
        assert len(lines) >= len(part.get("rows", [])) + len(part.get("skipped_steps", []))
    assert "wrote" in smoke["_stdout"].splitlines()[-1]


def test_figures_that_must_hold_on_any_device(smoke):
    parts = smoke["parts"]
    assert parts["peak"]["details"]["peak_flops"]["fp32"] > 0
    for name in ("visual", "acoustic", "text"):
        if parts[name]["status"] == "ran":
            for r in parts[name]["rows"]:
                assert r["batched"] > 0 and r["single"] > 0
                assert r["share_of_peak_pct"] > 0  # FLOPs were counted from the shapes
                assert r["max_abs_diff"] < 1e-3  # batched == one at a time (fp32)
                assert r["finite"]
    plans = parts["text_plans"]
    if plans["status"] == "ran":
        assert plans["details"]["docs_gb"]["single"] > 0  # read from docs/extraction_models.md
        assert "oom_backoff" in plans["details"], plans["skipped_steps"]
        oom = plans["details"]["oom_backoff"]
        assert oom["halvings"] >= 1 and oom["final_batch"] < oom["start_batch"]
        assert oom["same_features"]
        assert any("cpu_offload" in s for s in plans["skipped_steps"])
    train = parts["training"]
    if train["status"] == "ran":
        assert "cpu_vs_device" in train["details"], train["skipped_steps"]
        assert train["details"]["cpu_vs_device"]["within_tolerance"]
        assert [r["unit"] for r in train["rows"]][:2] == ["s/epoch", "s/epoch"]
    fam = parts["families"]
    if fam["status"] == "ran":  # the zoo's DINOv2 and BERT encoder (WavLM once the stage has it)
        ran = {r["what"].split()[0] for r in fam["rows"]}
        assert ran >= {"visual", "text"}, fam["skipped_steps"]
        for r in fam["rows"]:
            assert r["unit"] == "s/clip" and r["batched"] > 0 and r["single"] > 0
            assert r["tolerance"] == 1e-5 and r["within_tolerance"], r  # CPU fp32: CI's
            assert r["finite"]
    slots = parts["slots"]["details"]
    assert not slots["slots as configured"]["second_waited"]  # no GPU: no slot taken
    assert slots["slots MERSEMI_GPUS=0,0"]["second_waited"]  # one slot: the second waits


def test_a_missing_package_is_a_skip_with_its_name(tmp_path):
    report = run_check(
        tmp_path, "--parts", "visual", env_extra={"MERSEMI_GPU_CHECK_HIDE": "open_clip"}
    )
    assert list(report["parts"]) == ["peak", "visual"]  # peak always: the '% peak' yardstick
    visual = report["parts"]["visual"]
    assert visual["status"] == "skipped" and "open_clip_torch" in visual["reason"]


def scale_to_40(*args) -> dict:
    """benchmarks/gpu_check/text.py's scale_to_40, imported as the check imports it: as the
    module `benchmarks.gpu_check.text` from the checkout's root."""
    code = (
        "import json, sys; from benchmarks.gpu_check.text import scale_to_40; "
        "print(json.dumps(scale_to_40(*json.loads(sys.argv[1]))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout)


def test_scaling_to_40_layers_adds_the_missing_layers_and_the_real_embedding():
    sizes = {"hidden_size": 5120, "intermediate_size": 13696, "vocab_size": 400}
    s = scale_to_40(sizes, 3, 10_000.0, 3 * 600.0, 2, 0, 2)
    layer = (4 * 5120**2 + 3 * 5120 * 13696) * 2 / 2**20
    assert s["layer_weights_mb"] == pytest.approx(layer)
    # 40 bf16 layers + a 125,696 x 5,120 bf16 embedding: the ~26 GB behind docs' "~28 GB"
    weights_gb = (3 * 600 + 37 * layer + (125696 - 400) * 5120 * 2 / 2**20) / 1024
    assert s["weights_40_mb"] / 1024 == pytest.approx(weights_gb)
    assert 24 < weights_gb < 28
    assert s["tokens_per_s_factor"] == pytest.approx(3 / 40)
