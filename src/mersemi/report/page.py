"""The run's summary page (tables), the first item of the Snakemake report (`snakemake
--report`), which adds the plots of `mersemi plots`; also readable alone (results/report.html).

Pure core: `build_report(inputs) -> str` takes already-loaded dicts and frames; `main` reads
the files. No plotting library: tables, with bars and a heat-coloured confusion matrix in CSS.
"""

import argparse
import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from ..classes import CLASSES
from ..errors import InputError
from ..manifest import read_manifest
from ..store import read_features

STYLE = """
body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;text-align:right;
border-bottom:1px solid #eee}th:first-child,td:first-child{text-align:left}
.bar{display:inline-block;height:.7rem;background:#4a7fb5;vertical-align:middle}
.note{color:#666;font-size:.9rem}
"""


@dataclass
class ReportInputs:
    manifest: pd.DataFrame
    stages: dict[str, dict] = field(default_factory=dict)  # label -> metrics JSON
    ablations: dict[str, dict] = field(default_factory=dict)  # label -> metrics JSON
    final: str = ""  # label (in stages) whose confusion matrix and per-class F1 are shown
    folds: dict[str, dict] = field(default_factory=dict)  # label -> metrics JSON with folds
    audit: dict | None = None
    rounds: dict | None = None  # rounds.json (mersemi train rounds), with pseudo.rounds > 1
    features: dict[str, dict] = field(default_factory=dict)  # modality -> {clips, valid, model}
    note: str = ""
    # The feature benchmark's JSON (`mersemi train feature-bench`) and its plot (PNG bytes).
    feature_bench: dict | None = None
    feature_bench_plot: bytes | None = None


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows
    )  # cells are pre-escaped by callers
    return f"<table><tr>{head}</tr>{body}</table>"


def _metrics_rows(metrics: dict[str, dict]) -> list[list]:
    rows = []
    for label, m in metrics.items():
        cv, test = m.get("cv"), m.get("test")
        rows.append(
            [
                html.escape(label),
                _pct(cv and cv["waf"]),
                _pct(cv and cv["accuracy"]),
                _pct(test and test["waf"]),
                _pct(test and test["accuracy"]),
                " · ".join(
                    f"{k} {100 * v:.1f}"
                    for k, v in ((cv or {}).get("per_classifier_waf") or {}).items()
                ),
            ]
        )
    return rows


def _bar(n: int, top: int) -> str:
    width = 0 if top == 0 else round(12 * n / top, 2)
    return f'{n} <span class="bar" style="width:{width}rem"></span>'


def _confusion(conf: dict) -> str:
    labels, matrix = conf["labels"], conf["matrix"]
    rows = []
    for label, row in zip(labels, matrix, strict=True):
        total = sum(row) or 1
        cells = [html.escape(label)]
        for n in row:
            alpha = n / total
            cells.append(
                f'<span style="background:rgba(74,127,181,{alpha:.2f});padding:0 .4rem">{n}</span>'
            )
        rows.append(cells)
    return _table(["true \\ predicted", *labels], rows)


def _train_counts(metrics: dict) -> dict[str, float] | None:
    """Mean per-fold training class counts (after oversampling and pseudo labels)."""
    folds = [f["train_counts"] for f in metrics.get("folds", []) if "train_counts" in f]
    if not folds:
        return None
    return {c: sum(f[c] for f in folds) / len(folds) for c in CLASSES}


def _pm(v, sd, seeds) -> str:
    if v is None:
        return "–"
    return f"{v:.2f} ± {sd:.2f}" if seeds > 1 and sd is not None else f"{v:.2f}"


def _feature_bench(doc: dict, plot: bytes | None) -> list[str]:
    """The feature benchmark's ranked table (its rows in their order) and the plot, inline."""
    rows = doc.get("rows") or []
    seeds = max([int(r.get("seeds") or 1) for r in rows] or [1])
    parts = [
        "<h2>Feature benchmark (WAF, %)</h2>",
        "<p class='note'>The linear probe and the MER2024 baseline on each feature set alone, "
        f"then on the combinations; mean ± std over {seeds} seed(s), ranked by CV WAF within "
        "each modality.</p>",
        _table(
            ["rank", "set(s)", "modality", "model", "dims", "CV WAF", "test WAF"],
            [
                [r["rank"], html.escape(str(r["sets"])), html.escape(str(r["modality"])),
                 html.escape(str(r["model"])), html.escape(str(r["dims"])),
                 _pm(r.get("cv_waf"), r.get("cv_waf_std"), r.get("seeds") or 1),
                 _pm(r.get("test_waf"), r.get("test_waf_std"), r.get("seeds") or 1)]
                for r in rows
            ],
        ),
    ]  # fmt: skip
    if plot:
        data = base64.b64encode(plot).decode("ascii")
        parts.append(
            f"<img alt='feature benchmark: CV WAF per set and model' style='max-width:100%' "
            f"src='data:image/png;base64,{data}'>"
        )
    return parts


def _priors(stages: dict[str, dict]) -> list[str]:
    """The pool's class prior that `vote.prior: em` estimated, beside the labeled set's."""
    parts = []
    for label, m in stages.items():
        pr = m.get("prior")
        if not pr:
            continue
        parts.append(f"<h2>{html.escape(label)}: class prior of the pool (vote.prior em)</h2>")
        parts.append(
            f"<p class='note'>EM (Saerens et al. 2002) over {pr.get('pool_rows')} pool clips, "
            f"{pr.get('iterations')} iterations, calibration temperature "
            f"{pr.get('temperature')}; their voted probabilities re-weighted to the estimate "
            f"({pr.get('changed_predictions')} predictions changed). CV rows keep theirs.</p>"
        )
        rows = [[c, _pct(pr["labeled"][c]), _pct(pr["estimated"][c])] for c in CLASSES]
        parts.append(_table(["class", "labeled (%)", "pool, estimated (%)"], rows))
    return parts


def _rounds(rows: list[dict]) -> list[str]:
    """rounds.json as a table: each round's pseudo labels and the step it trained."""
    body = [
        [row["round"], f"step {row['step']}", row["count"], _pct(row["share"]),
         _pct(row["agreement_rate"]), _pct(row.get("precision")), _pct(row.get("cv_waf")),
         _pct(row.get("test_waf")), "yes" if row["stopped_early"] else "no"]
        for row in rows
    ]  # fmt: skip
    header = ["round", "trains", "kept", "share (%)", "agreement (%)", "precision (%)",
              "CV WAF", "test WAF", "stopped early"]  # fmt: skip
    return ["<h2>Self-training rounds</h2>", _table(header, body)]


def build_report(r: ReportInputs) -> str:
    parts = [f"<h1>mersemi report</h1><p class='note'>{html.escape(r.note)}</p>"]

    splits = r.manifest["split"].value_counts()
    parts.append("<h2>Data</h2>")
    parts.append(
        _table(
            ["split", "clips"],
            [[s, int(splits.get(s, 0))] for s in ("train", "unlabeled", "test")],
        )
    )
    if r.features:
        parts.append(
            _table(
                ["modality", "model", "clips", "valid"],
                [
                    [m, html.escape(f["model"]), f["clips"], f["valid"]]
                    for m, f in r.features.items()
                ],
            )
        )

    parts.append("<h2>Scores (WAF and accuracy, %)</h2>")
    header = ["", "CV WAF", "CV acc", "test WAF", "test acc", "CV WAF per classifier"]
    parts.append(_table(header, _metrics_rows(r.stages)))
    if r.ablations:
        parts.append("<h2>Ablations (paper, Table 1)</h2>")
        parts.append(_table(header, _metrics_rows(r.ablations)))

    parts += _priors(r.stages)
    if r.feature_bench is not None:
        parts += _feature_bench(r.feature_bench, r.feature_bench_plot)

    final = r.stages.get(r.final)
    if final:
        for part in ("cv", "test"):
            m = final.get(part)
            if not m:
                continue
            parts.append(f"<h2>{html.escape(r.final)}: {part.upper()} per class</h2>")
            rows = [[c, f"{100 * m['f1_per_class'][c]:.1f}"] for c in CLASSES]
            parts.append(_table(["class", "F1 (%)"], rows))
            parts.append(_confusion(m["confusion"]))

    parts.append("<h2>Class distribution of the training folds</h2>")
    labeled = r.manifest[r.manifest["split"] == "train"]["label"].value_counts()
    columns = {"labeled": {c: float(labeled.get(c, 0)) for c in CLASSES}}
    for label, m in r.folds.items():
        counts = _train_counts(m)
        if counts:
            columns[f"{label} (mean per fold)"] = counts
    top = int(max(max(v.values()) for v in columns.values()) or 1)
    rows = [[c, *(_bar(round(v[c]), top) for v in columns.values())] for c in CLASSES]
    parts.append(_table(["class", *columns], rows))

    if r.audit:
        a = r.audit
        parts.append("<h2>Pseudo labels</h2>")
        parts.append(
            f"<p>{a['selected']['count']} of {a['pool']} pool clips kept; the two models agree "
            f"on {100 * a['agreement_rate']:.1f}%; confidence rule: "
            f"{html.escape(str(a['confidence']))}; test clips eligible: "
            f"{a.get('include_test')}.</p>"
        )
        per = a["selected"]["per_class"]
        top = max(1, *per.values())
        parts.append(
            _table(
                ["class", "threshold", "kept"],
                [[c, a["thresholds"][c], _bar(per[c], top)] for c in CLASSES],
            )
        )
        sweep = [[s["threshold"], s["count"], _pct(s.get("precision"))] for s in a.get("sweep", [])]
        parts.append(
            "<p>Uniform-threshold sweep (precision where the pool's labels are known):</p>"
        )
        parts.append(_table(["threshold", "kept", "precision (%)"], sweep))

    if r.rounds:
        parts += _rounds(r.rounds["rounds"])

    prov = r.stages.get(r.final, {}).get("provenance")
    if prov:
        parts.append("<h2>Provenance (of the final scores)</h2>")
        rows = [[k, html.escape(str(prov.get(k)))] for k in
                ("mersemi", "git_commit", "git_dirty", "params_sha256", "device", "python",
                 "created") if k in prov]  # fmt: skip
        rows += [[name, html.escape(str(v))] for name, v in prov.get("packages", {}).items()]
        parts.append(_table(["", ""], rows))

    body = "\n".join(parts)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>mersemi report</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _read_json(path: str, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} {path}: not found") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{what} {path}: not JSON ({e})") from None


def _read_png(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"--feature-bench-plot {path}: not found") from None
    if not data.startswith(b"\x89PNG"):
        raise InputError(f"--feature-bench-plot {path}: not a PNG")
    return data


def _labelled(specs: list[str] | None, what: str) -> dict[str, dict]:
    out = {}
    for spec in specs or []:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise InputError(f"{what} {spec!r}: expected LABEL=PATH")
        out[label] = _read_json(path, what)
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the HTML report")
    p.add_argument("--manifest", required=True)
    p.add_argument("--stage", action="append", metavar="LABEL=METRICS_JSON")
    p.add_argument("--ablation", action="append", metavar="LABEL=METRICS_JSON")
    p.add_argument("--final", default="", help="stage label whose per-class scores are shown")
    p.add_argument(
        "--folds",
        action="append",
        metavar="LABEL=METRICS_JSON",
        help="a training step whose per-fold class counts are shown",
    )
    p.add_argument("--audit", help="pseudo-label audit JSON")
    p.add_argument("--rounds", help="rounds.json (mersemi train rounds), with pseudo.rounds > 1")
    p.add_argument("--features", nargs="*", default=[], help="merged feature files")
    p.add_argument("--feature-bench", help="feature benchmark JSON (mersemi train feature-bench)")
    p.add_argument("--feature-bench-plot", help="its plot (mersemi plots benchmark), a PNG")
    p.add_argument("--note", default="")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_main)


def _main(args) -> None:
    features = {}
    for path in args.features:
        fs = read_features(path)
        features[fs.meta.modality] = {
            "model": fs.meta.model,
            "clips": len(fs),
            "valid": int(fs.valid.sum()),
        }
    inputs = ReportInputs(
        manifest=read_manifest(args.manifest),
        stages=_labelled(args.stage, "--stage"),
        ablations=_labelled(args.ablation, "--ablation"),
        final=args.final,
        folds=_labelled(args.folds, "--folds"),
        audit=_read_json(args.audit, "--audit") if args.audit else None,
        rounds=_read_json(args.rounds, "--rounds") if args.rounds else None,
        features=features,
        note=args.note,
        feature_bench=(
            _read_json(args.feature_bench, "--feature-bench") if args.feature_bench else None
        ),
        feature_bench_plot=_read_png(args.feature_bench_plot) if args.feature_bench_plot else None,
    )
    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(build_report(inputs), "utf-8")
