import json

import pandas as pd

from mersemi.classes import CLASSES
from mersemi.report.page import ReportInputs, build_report


def metrics(waf, test=None):
    part = {
        "waf": waf,
        "accuracy": waf,
        "f1_per_class": {c: 0.5 for c in CLASSES},
        "confusion": {"labels": list(CLASSES), "matrix": [[7] * 6 for _ in CLASSES]},
        "per_classifier_waf": {"A": 0.5, "F": waf},
    }
    return {
        "cv": part,
        "test": test,
        "folds": [{"train_counts": {c: 10 * (i + 1) for i, c in enumerate(CLASSES)}}],
    }


def test_report_shows_scores_confusion_distribution_and_audit():
    manifest = pd.DataFrame(
        {"split": ["train", "train", "unlabeled"], "label": ["happy", "sad", ""]}
    )
    audit = {
        "pool": 100,
        "agreement_rate": 0.5,
        "confidence": "both",
        "include_test": True,
        "thresholds": {c: 0.9 for c in CLASSES},
        "selected": {"count": 12, "per_class": {c: 2 for c in CLASSES}},
        "sweep": [{"threshold": 0.8, "count": 20, "precision": 0.75}],
    }
    html = build_report(
        ReportInputs(
            manifest=manifest,
            stages={"baseline": metrics(0.61), "voted": metrics(0.7234)},
            ablations={"w/o NEE": metrics(0.65)},
            final="voted",
            folds={"step 2": metrics(0.7)},
            audit=audit,
        )
    )
    assert "72.34" in html and "61.00" in html and "Ablations" in html
    assert "A 50.0 · F 72.3" in html  # each classifier's CV WAF beside the vote
    assert html.count(">7</span>") == 36  # 6x6 confusion cells
    assert "12 of 100 pool clips kept" in html and "75.00" in html
    assert "step 2 (mean per fold)" in html  # distribution after oversampling/pseudo labels


def test_report_shows_the_feature_benchmark_table_and_plot_when_given():
    manifest = pd.DataFrame({"split": ["train"], "label": ["happy"]})
    rows = [
        {"rank": 1, "sets": "hubert", "modality": "acoustic", "model": "baseline", "dims": "32",
         "cv_waf": 61.234, "cv_waf_std": 1.5, "test_waf": None, "test_waf_std": None,
         "seeds": 2},
        {"rank": 1, "sets": "hubert+clip+llm", "modality": "acoustic+visual+text",
         "model": "probe", "dims": "32+32+32", "cv_waf": 70.0, "cv_waf_std": 0.25,
         "test_waf": 65.5, "test_waf_std": 0.5, "seeds": 2},
    ]  # fmt: skip
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 16
    html = build_report(
        ReportInputs(manifest=manifest, feature_bench={"rows": rows}, feature_bench_plot=png)
    )
    assert "Feature benchmark" in html and "over 2 seed(s)" in html
    assert "<td>hubert</td><td>acoustic</td><td>baseline</td><td>32</td>" in html
    assert "61.23 ± 1.50" in html and "70.00 ± 0.25" in html and "65.50 ± 0.50" in html
    assert "<td>hubert+clip+llm</td>" in html and "<td>–</td>" in html  # no test labels
    assert html.index("<td>hubert</td>") < html.index("<td>hubert+clip+llm</td>")  # ranked
    assert "data:image/png;base64," in html
    # without the benchmark, no section
    assert "Feature benchmark" not in build_report(ReportInputs(manifest=manifest))


def test_report_command_reads_the_feature_benchmark(tmp_path):
    from mersemi.cli import main

    manifest = tmp_path / "manifest.csv"
    manifest.write_text("name,path,split,label,shard\na,a.mp4,train,happy,0\n")
    bench = tmp_path / "table.json"
    row = {"rank": 1, "sets": "w2v", "modality": "acoustic", "model": "probe", "dims": "8",
           "cv_waf": 40.0, "cv_waf_std": 0.0, "test_waf": None, "test_waf_std": None,
           "seeds": 1}  # fmt: skip
    bench.write_text(json.dumps({"rows": [row]}))
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\nxx")
    out = tmp_path / "report.html"
    args = ["report", "--manifest", str(manifest), "--feature-bench", str(bench),
            "--feature-bench-plot", str(plot), "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    html = out.read_text()
    assert "<td>w2v</td>" in html and "<td>40.00</td>" in html and "base64," in html


def test_report_shows_the_estimated_pool_prior_beside_the_labeled_one():
    manifest = pd.DataFrame({"split": ["train"], "label": ["happy"]})
    m = metrics(0.7)
    labeled = {c: 1 / 6 for c in CLASSES}
    est = {c: (0.5 if c == "happy" else 0.1) for c in CLASSES}
    m["prior"] = {"method": "em", "labeled": labeled, "estimated": est, "iterations": 17,
                  "pool_rows": 900, "temperature": 1.2, "changed_predictions": 31}  # fmt: skip
    html = build_report(ReportInputs(manifest=manifest, stages={"voted": m, "base": metrics(0.6)}))
    assert html.count("class prior of the pool") == 1  # only the stage that has one
    assert "<td>happy</td><td>16.67</td><td>50.00</td>" in html
    assert "17 iterations" in html and "900 pool clips" in html


def test_report_command_tables_the_rounds_of_rounds_json(tmp_path, capsys):
    """`mersemi report --rounds` on what `mersemi train rounds` writes: one row per round."""
    from mersemi.cli import main
    from mersemi.train.rounds import summarise_rounds

    def audit(count, precision):
        return {"pool": 200, "agreement_rate": 0.9,
                "selected": {"count": count, "per_class": {c: 1 for c in CLASSES},
                             "precision": precision}}  # fmt: skip

    stopped = {**metrics(0.7312, test=metrics(0.7001)["cv"]), "stopped_early": True}
    doc = summarise_rounds([audit(30, 0.95), audit(33, 0.94)], [metrics(0.72), stopped])
    rounds = tmp_path / "rounds.json"
    rounds.write_text(json.dumps(doc))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("name,path,split,label,shard\na,a.mp4,train,happy,0\n")
    out = tmp_path / "report.html"
    base = ["report", "--manifest", str(manifest), "--out", str(out)]
    assert main([*base, "--rounds", str(rounds)]) == 0
    html = out.read_text()
    table = html.split("<h2>Self-training rounds</h2>", 1)[1].split("</table>", 1)[0]
    rows = [r.split("</td><td>") for r in table.split("<tr><td>")[1:]]
    assert [r[:3] for r in rows] == [["1", "step 2", "30"], ["2", "step 3", "33"]]
    assert rows[1][3:] == ["16.50", "90.00", "94.00", "73.12", "70.01", "yes</td></tr>"]
    assert rows[0][-1] == "no</td></tr>"
    assert main(base) == 0 and "Self-training rounds" not in out.read_text()
    capsys.readouterr()
    assert main([*base, "--rounds", str(tmp_path / "none.json")]) == 2
    assert capsys.readouterr().err.strip().endswith("none.json: not found")
