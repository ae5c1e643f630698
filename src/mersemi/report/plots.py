"""Plots of a run for the Snakemake report (`snakemake --report`), one PNG each:

    mersemi plots training --metrics LABEL=STEP_METRICS_JSON ... --out curves.png
    mersemi plots confusion --metrics VOTE_METRICS_JSON --out confusion.png
    mersemi plots f1 --metrics LABEL=METRICS_JSON ... --out f1.png
    mersemi plots sweep --sweep SWEEP_CSV --audit AUDIT_JSON --out sweep.png
    mersemi plots features --reasons MODALITY=REASONS_CSV_OR_FOLDER ... --out features.png
    mersemi plots benchmark --table FEATURE_BENCH_JSON --out feature_bench.png

Time per rule is in the Snakemake report's own statistics.
Pure cores (`*_figure(data) -> Figure`) take loaded data; the CLI reads files and saves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..classes import CLASSES
from ..errors import InputError


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_figure(runs: dict[str, dict]):
    """Validation WAF and training loss per epoch, one line per fold, one column per step."""
    plt = _plt()
    fig, axes = plt.subplots(2, len(runs), figsize=(4.2 * len(runs), 6), squeeze=False)
    for col, (label, m) in enumerate(runs.items()):
        for f in m.get("folds", []):
            hist = pd.DataFrame(f.get("history", []))
            if hist.empty:
                continue
            k = f.get("fold", len(axes[0, col].lines))
            axes[0, col].plot(hist["epoch"], 100 * hist["val_waf"], label=f"fold {k}")
            axes[1, col].plot(hist["epoch"], hist["loss"])
            if f.get("best_epoch"):
                axes[0, col].axvline(f["best_epoch"], color="grey", lw=0.5, ls=":")
        axes[0, col].set_title(label, fontsize=10)
        axes[0, col].set_ylabel("validation WAF (%)")
        axes[1, col].set_ylabel("training loss")
        axes[1, col].set_xlabel("epoch")
        axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    return fig


def confusion_figure(metrics: dict, part: str = "cv"):
    plt = _plt()
    conf = np.asarray(metrics[part]["confusion"]["matrix"], dtype=float)
    labels = metrics[part]["confusion"]["labels"]
    rows = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, int(conf[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if rows[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{part.upper()} confusion (counts; colour: share of the true class)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def f1_figure(runs: dict[str, dict], part: str = "cv"):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / max(len(runs), 1)
    x = np.arange(len(CLASSES))
    for i, (label, m) in enumerate(runs.items()):
        f1 = [100 * m[part]["f1_per_class"][c] for c in CLASSES]
        ax.bar(x + i * width, f1, width, label=f"{label} (WAF {100 * m[part]['waf']:.1f})")
    ax.set_xticks(x + width * (len(runs) - 1) / 2, CLASSES)
    ax.set_ylabel(f"{part.upper()} F1 (%)")
    ax.set_ylim(0, 100)
    # Above the axes: inside, it hides the bars of the classes near 100 %.
    ax.legend(fontsize=7, ncol=len(runs), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return fig


def sweep_figure(sweep: pd.DataFrame, audit: dict):
    """Pseudo labels kept at each uniform threshold, with their precision where known; the
    configured per-class thresholds' selection as a marker."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(sweep["threshold"], sweep["count"], "o-", label="kept")
    ax.set_xlabel("confidence threshold (all classes)")
    ax.set_ylabel("pseudo labels kept")
    sel = audit.get("selected", {})
    if "count" in sel:
        ax.axhline(sel["count"], color="grey", ls="--", lw=0.8,
                   label=f"configured thresholds: {sel['count']}")  # fmt: skip
    prec = pd.to_numeric(sweep.get("precision"), errors="coerce")
    if prec is not None and prec.notna().any():
        ax2 = ax.twinx()
        ax2.plot(sweep["threshold"], 100 * prec, "s-", color="tab:green", label="precision")
        ax2.set_ylabel("precision (%)")
        ax2.set_ylim(0, 105)
        ax2.legend(loc="center left", fontsize=7)
    ax.legend(loc="center right", fontsize=7)
    ax.set_title(f"pool of {audit.get('pool', '?')} clips", fontsize=9)
    fig.tight_layout()
    return fig


def features_figure(reasons: dict[str, pd.DataFrame]):
    """Per modality: valid clips and the failure reasons of the others (stacked bars)."""
    plt = _plt()
    counts = {}
    for modality, df in reasons.items():
        valid = df["valid"].astype(str).str.lower() == "true"
        c = {"valid": int(valid.sum())}
        c |= df.loc[~valid, "reason"].replace("", "unknown").value_counts().to_dict()
        counts[modality] = c
    table = pd.DataFrame(counts).fillna(0).T
    fig, ax = plt.subplots(figsize=(6.5, 0.6 + 0.7 * len(table)))
    left = np.zeros(len(table))
    for col in ["valid", *sorted(c for c in table.columns if c != "valid")]:
        ax.barh(table.index, table[col], left=left, label=col)
        left += table[col].to_numpy()
    ax.set_xlabel("clips")
    ax.legend(fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return fig


def benchmark_figure(rows: list[dict]):
    """The feature benchmark (`mersemi train feature-bench`): CV WAF mean per row, std over
    seeds as error bars, one colour per model, in the table's order (best of a modality on
    top)."""
    plt = _plt()
    from matplotlib.patches import Patch

    df = pd.DataFrame(rows)
    if df.empty:
        raise InputError("feature benchmark: no rows to plot")
    models = list(dict.fromkeys(df["model"]))
    colours = {m: f"C{i}" for i, m in enumerate(models)}
    y = np.arange(len(df))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 1.0 + 0.32 * len(df)))
    ax.barh(y, df["cv_waf"].astype(float), xerr=df["cv_waf_std"].astype(float),
            color=[colours[m] for m in df["model"]], capsize=3)  # fmt: skip
    ax.set_yticks(y, [f"{r.sets} ({r.modality})" for r in df.itertuples()], fontsize=7)
    for i in np.flatnonzero(df["modality"].to_numpy()[1:] != df["modality"].to_numpy()[:-1]):
        ax.axhline(y[i] - 0.5, color="grey", lw=0.6, ls=":")  # between modalities
    mean, std = df["cv_waf"].astype(float), df["cv_waf_std"].astype(float).fillna(0)
    for yi, v, sd in zip(y, mean, std, strict=True):
        if np.isfinite(v):  # right of the error bar
            ax.text(v + sd + 1, yi, f"{v:.1f}", va="center", fontsize=6)
    ax.set_xlim(0, max(100, float(np.nanmax(mean + std)) + 8))
    seeds = int(df["seeds"].max())
    ax.set_xlabel(f"CV WAF (%), mean ± std over {seeds} seed(s)")
    handles = [Patch(color=c, label=m) for m, c in colours.items()]
    ax.legend(handles=handles, fontsize=7, ncol=len(models), loc="lower center",
              bbox_to_anchor=(0.5, 1.0))  # fmt: skip
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------- I/O


def _json(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read JSON ({e})") from None


def _pairs(specs: list[str], what: str) -> dict[str, str]:
    out = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not (sep and label and path):
            raise InputError(f"{what} {spec!r}: expected LABEL=PATH")
        out[label] = path
    return out


def read_reasons(path: Path) -> pd.DataFrame:
    """A reasons sidecar, or every `*.reasons.csv` of a stage's folder (one per shard)."""
    files = sorted(path.glob("*.reasons.csv")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path}: no *.reasons.csv")
    return pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files])


def _save(fig, out: str) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    _plt().close(fig)


def _run(args) -> None:
    kind = args.kind
    if kind == "training":
        fig = training_figure({k: _json(v) for k, v in _pairs(args.metrics, "--metrics").items()})
    elif kind == "confusion":
        fig = confusion_figure(_json(args.metrics[0]))
    elif kind == "f1":
        fig = f1_figure({k: _json(v) for k, v in _pairs(args.metrics, "--metrics").items()})
    elif kind == "benchmark":
        if not args.table:
            raise InputError("plots benchmark: --table FEATURE_BENCH_JSON is required")
        fig = benchmark_figure(_json(args.table).get("rows", []))
    elif kind == "sweep":
        fig = sweep_figure(pd.read_csv(args.sweep), _json(args.audit))
    else:
        fig = features_figure(
            {k: read_reasons(Path(v)) for k, v in _pairs(args.reasons, "--reasons").items()}
        )
    _save(fig, args.out)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plots", help="PNG plots of a run (for snakemake --report)")
    p.add_argument(
        "kind", choices=["training", "confusion", "f1", "sweep", "features", "benchmark"]
    )
    p.add_argument("--metrics", nargs="+", default=[], help="metrics JSON(s), LABEL=PATH")
    p.add_argument("--sweep", help="pseudo-label sweep CSV")
    p.add_argument("--audit", help="pseudo-label audit JSON")
    p.add_argument("--table", help="feature benchmark JSON (mersemi train feature-bench)")
    p.add_argument("--reasons", nargs="+", default=[],
                   help="MODALITY=PATH: a reasons CSV or a folder of them")  # fmt: skip
    p.add_argument("--out", required=True)
    p.set_defaults(func=_run)
