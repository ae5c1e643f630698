"""Table 1 of the paper: CV and test WAF per method (the ablations), mean ± std over seeds.

`mersemi train ablations` writes it (CSV, markdown, JSON); the benchmarks extend its columns.
"""

import numpy as np
import pandas as pd


def _waf(m: dict | None, part: str):
    return None if not m or not m.get(part) else 100 * m[part]["waf"]


TABLE1_COLS = (
    "cv_waf",
    "test_waf",
    "cv_waf_fitted",
    "test_waf_fitted",
    "cv_waf_auto",
    "test_waf_auto",
)


def ablation_table(rows: list[tuple[str, dict]]) -> pd.DataFrame:
    """Table 1: one row per method (a label given several times: one metrics JSON per seed),
    mean and std (ddof 1; 0 for one seed) of CV and test WAF, with the paper's vote weights
    and, where the metrics hold them (`votes`), with weights fitted out of fold and the auto
    choice between the two."""
    groups: dict[str, list[dict]] = {}
    for label, m in rows:
        groups.setdefault(label, []).append(m)
    cols = {
        "cv_waf": lambda m: _waf(m.get("votes", {}).get("paper", m), "cv"),
        "test_waf": lambda m: _waf(m.get("votes", {}).get("paper", m), "test"),
        "cv_waf_fitted": lambda m: _waf(m.get("votes", {}).get("fitted"), "cv"),
        "test_waf_fitted": lambda m: _waf(m.get("votes", {}).get("fitted"), "test"),
        "cv_waf_auto": lambda m: _waf(m.get("votes", {}).get("auto"), "cv"),
        "test_waf_auto": lambda m: _waf(m.get("votes", {}).get("auto"), "test"),
    }
    out = []
    for label, ms in groups.items():
        row = {"method": label, "seeds": len(ms)}
        for c, get in cols.items():
            vals = [v for v in map(get, ms) if v is not None]
            row[c] = round(float(np.mean(vals)), 2) if vals else None
            row[c + "_std"] = (
                round(float(np.std(vals, ddof=1)), 2) if len(vals) > 1 else (0.0 if vals else None)
            )
        out.append(row)
    return pd.DataFrame(out)


def markdown_table(df: pd.DataFrame) -> str:
    def cell(r, c):
        v, sd = getattr(r, c), getattr(r, c + "_std")
        if v is None or pd.isna(v):
            return "–"
        return f"{v:.2f} ± {sd:.2f}" if r.seeds > 1 else f"{v:.2f}"

    lines = [
        "| Method | CV WAF (%) | Test WAF (%) | CV WAF, fitted vote | Test WAF, fitted vote "
        "| CV WAF, auto vote | Test WAF, auto vote | Seeds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in df.itertuples(index=False):
        cells = " | ".join(cell(r, c) for c in TABLE1_COLS)
        lines.append(f"| {r.method} | {cells} | {r.seeds} |")
    return "\n".join(lines) + "\n"
