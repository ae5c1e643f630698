"""`mersemi check-models`: one table, and one line naming each broken case with its fix."""

import json
import shutil
from pathlib import Path

import pytest
from helpers.tiny_models import tiny_model

from mersemi.cli import main


def check(capsys, stage: str, params: dict, *extra: str) -> tuple[int, str]:
    code = main(["check-models", "--stage", stage, "--params", json.dumps(params), *extra])
    return code, capsys.readouterr().err


def one_line(err: str, item: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("mersemi check-models:")]
    assert len([ln for ln in lines if f": {item}:" in ln]) == 1, err
    return next(ln for ln in lines if f": {item}:" in ln)


def test_a_ready_model_passes_and_writes_the_table(capsys, tmp_path):
    out = tmp_path / "acoustic.txt"
    code, err = check(
        capsys, "acoustic", {"model_dir": str(tiny_model("hubert"))}, "--out", str(out)
    )
    assert code == 0 and "MISSING" not in err
    assert "dim" in out.read_text() and "ok" in out.read_text()


@pytest.mark.parametrize(
    ("broken", "item", "says"),
    [
        ("wrong_path", "model_dir", "set extract.acoustic.model_dir"),
        ("no_weights", "weights", "download the model's weights"),
        ("corrupt_config", "model_dir", "re-download the directory"),
        ("too_many_layers", "layers", "lower extract.acoustic.layers"),
        ("bad_param", "params", "fix the extract.acoustic section"),
    ],
)
def test_each_broken_case_is_one_line_with_its_fix(capsys, tmp_path, broken, item, says):
    d = tmp_path / "hubert"
    shutil.copytree(tiny_model("hubert"), d)
    params = {"model_dir": str(d)}
    if broken == "wrong_path":
        params["model_dir"] = str(tmp_path / "nowhere")
    elif broken == "no_weights":
        for f in [*d.glob("*.safetensors"), *d.glob("pytorch_model*.bin")]:
            f.unlink()
    elif broken == "corrupt_config":
        (d / "config.json").write_text("{not json")
    elif broken == "too_many_layers":
        params["layers"] = 99
    else:
        params["layers"] = "four"
    out = tmp_path / "acoustic.txt"
    code, err = check(capsys, "acoustic", params, "--out", str(out))
    assert code == 2 and not out.exists()  # the workflow's check rule fails, nothing queued
    assert says in one_line(err, item) and "Traceback" not in err


def test_a_missing_package_is_named(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "transformers", None)
    code, err = check(capsys, "acoustic", {"model_dir": str(tiny_model("hubert"))})
    line = one_line(err, "package transformers")
    assert code == 2 and "pip install transformers" in line


def test_configfile_checks_every_stage_in_one_table(capsys):
    """config.mer2024.yaml names real model paths this machine lacks: one table over the six
    stages, and a line for each missing model naming its config key."""
    config = Path(__file__).resolve().parents[1] / "config.mer2024.yaml"
    code = main(["check-models", "--configfile", str(config)])
    err = capsys.readouterr().err
    table = err.split("mersemi check-models:")[0]
    assert code == 2
    assert {ln.split()[0] for ln in table.splitlines()[1:] if ln.strip()} == {
        "faces", "visual", "audio", "acoustic", "asr", "text",
    }  # fmt: skip
    for stage in ("faces", "visual", "acoustic", "asr", "text"):
        assert f"mersemi check-models: {stage}:" in err


def test_configfile_checks_every_feature_set(capsys, tmp_path):
    """config.zoo.yaml's shape (two sets per modality): every set is checked by its own
    params, so a set's bad model path is named by its set and config key, and the exit is 2;
    the sets named after a modality keep their stage's name."""
    import yaml

    from mersemi.fixtures.shared import shared_fixture

    zoo = shared_fixture("mertools-zoo", "reference.json", "MERSEMI_MERTOOLS_ZOO_FIXTURE")
    if zoo is None:
        pytest.skip("no mertools-zoo fixture")
    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config.zoo.yaml").read_text())
    sets = config["features"]
    sets["dinov2"]["params"]["checkpoint"] = str(zoo / "models" / "dinov2-large")
    sets["bert"]["params"]["model_dir"] = str(zoo / "models" / "chinese-roberta-wwm-ext-large")
    sets["wavlm"]["params"]["model_dir"] = str(tmp_path / "no-such-wavlm")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["check-models", "--configfile", str(path)])
    err = capsys.readouterr().err
    table = err.split("mersemi check-models:")[0]
    stages = {ln.split()[0] for ln in table.splitlines()[1:] if ln.strip()}
    assert code == 2
    assert {"visual", "visual:dinov2", "acoustic:wavlm", "text:bert"} <= stages
    failed = [ln for ln in err.splitlines() if ln.startswith("mersemi check-models:")]
    assert any(
        "acoustic:wavlm" in ln and "no-such-wavlm" in ln and "features.wavlm.params" in ln
        for ln in failed
    ), failed
    assert not any("text:bert" in ln or "visual:dinov2" in ln for ln in failed), failed
