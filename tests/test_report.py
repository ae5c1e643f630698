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
