"""`mersemi plots`: each plot of the report is drawn from a run's files into a PNG."""

import json

import pandas as pd
import pytest

from mersemi.classes import CLASSES
from mersemi.cli import main
from mersemi.errors import InputError
from mersemi.report.plots import read_reasons

PNG = b"\x89PNG"


def metrics(waf: float) -> dict:
    conf = [[5 if i == j else 1 for j in range(6)] for i in range(6)]
    hist = [{"epoch": e, "loss": 1.0 / e, "val_waf": waf * e / 5} for e in range(1, 6)]
    return {
        "cv": {"waf": waf, "f1_per_class": dict.fromkeys(CLASSES, waf),
               "confusion": {"labels": list(CLASSES), "matrix": conf}},
        "folds": [{"fold": k, "best_epoch": 4, "history": hist} for k in range(3)],
    }  # fmt: skip


@pytest.fixture
def run(tmp_path):
    for name, waf in (("base", 0.6), ("s1", 0.7), ("s2", 0.75)):
        (tmp_path / f"{name}.json").write_text(json.dumps(metrics(waf)))
    sweep = {"threshold": [0.5, 0.9, 0.99], "count": [90, 40, 5], "precision": [0.8, 0.95, ""]}
    pd.DataFrame(sweep).to_csv(tmp_path / "sweep.csv", index=False)
    (tmp_path / "audit.json").write_text(json.dumps({"pool": 180, "selected": {"count": 30}}))
    shards = tmp_path / "visual"
    shards.mkdir()
    for k, rows in enumerate([[("a", True, ""), ("b", False, "no_face")], [("c", True, "")]]):
        pd.DataFrame(rows, columns=["name", "valid", "reason"]).to_csv(
            shards / f"shard-{k:04d}.reasons.csv", index=False
        )
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [
        ["training", "--metrics", "baseline={d}/base.json", "MR-CCL step 1={d}/s1.json"],
        ["confusion", "--metrics", "{d}/s2.json"],
        ["f1", "--metrics", "baseline={d}/base.json", "step 2={d}/s2.json"],
        ["sweep", "--sweep", "{d}/sweep.csv", "--audit", "{d}/audit.json"],
        ["features", "--reasons", "visual={d}/visual"],
    ],
)
def test_each_plot_is_a_png(run, argv):
    out = run / "plot.png"
    assert main(["plots", *[a.format(d=run) for a in argv], "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == PNG and out.stat().st_size > 5000


def test_reasons_of_every_shard_and_bad_inputs(run, capsys):
    df = read_reasons(run / "visual")
    assert list(df["name"]) == ["a", "b", "c"]
    with pytest.raises(InputError, match="no \\*.reasons.csv"):
        read_reasons(run)
    assert main(["plots", "f1", "--metrics", f"{run}/s2.json", "--out", f"{run}/x.png"]) == 2
    assert "expected LABEL=PATH" in capsys.readouterr().err
