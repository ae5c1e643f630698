"""Rounds of self-training (`pseudo.rounds`): when a round's step is trained and when it
passes its inputs through unchanged (`pseudo.min_new`, docs/training.md "Rounds and
consensus").

Round r >= 2 selects pseudo labels from step r's MR-CCL predictions and trains step r + 1,
each fold starting from its step-r model. A round that adds fewer than `min_new` labels
beyond the round before it stops the rounds: its step writes step r's model and predictions
unchanged, with `"stopped_early": true` in its metrics, and every later round passes through
too (a stopped step's metrics say so).
"""

import json
import shutil
from pathlib import Path

from ..atomic import atomic_path
from ..errors import InputError
from .io import write_json


def stop_reason(prev_count: int, count: int, min_new: int, prev_stopped: bool) -> str | None:
    """Why this round's step does not train (None: it trains). `prev_count`, `count`: the
    pseudo labels of the round before and of this one; `prev_stopped`: the step this round
    starts from was itself passed through. min_new 0 never stops."""
    if prev_stopped:
        return "an earlier round stopped"
    if min_new > 0 and count - prev_count < min_new:
        return f"{count} pseudo labels, {count - prev_count} beyond the round before (< {min_new})"
    return None


def read_json(path: str, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} {path} not found") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{what} {path} is not JSON ({e})") from None


def round_decision(audit: str, prev_audit: str, prev_metrics: str, min_new: int) -> dict:
    """The facts a round's step decides on, read from its files, and the decision."""
    count = read_json(audit, "--audit")["selected"]["count"]
    prev_count = read_json(prev_audit, "--prev-audit")["selected"]["count"]
    prev_stopped = bool(read_json(prev_metrics, "--prev-metrics").get("stopped_early", False))
    why = stop_reason(prev_count, count, min_new, prev_stopped)
    return {
        "pseudo_labels_round": count,
        "pseudo_labels_previous_round": prev_count,
        "min_new": min_new,
        "stopped_early": why is not None,
        **({"stopped_because": why} if why else {}),
    }


def pass_through(init: str, prev_predictions: str, prev_metrics: str, out: dict, info: dict):
    """Write the step this round starts from as this round's outputs (`out`: checkpoint,
    predictions, metrics), its metrics marked with `info` (stopped_early)."""
    for src, key in ((init, "checkpoint"), (prev_predictions, "predictions")):
        with atomic_path(out[key]) as tmp:
            shutil.copyfile(src, tmp)
    write_json(read_json(prev_metrics, "--prev-metrics") | info, out["metrics"])


def summarise_rounds(audits: list[dict], metrics: list[dict]) -> dict:
    """rounds.json: per round (1, 2, ...) its pseudo labels (count, share of the pool, class
    mix, agreement, precision where the pool's truth was given) and the step it trained
    (step r + 1: CV / test WAF, stopped_early). `audits[i]`, `metrics[i]`: round i + 1's."""
    if len(audits) != len(metrics) or not audits:
        raise InputError(f"need one --metrics per --audit, got {len(audits)} and {len(metrics)}")
    rows = []
    for r, (a, m) in enumerate(zip(audits, metrics, strict=True), start=1):
        sel = a["selected"]
        rows.append(
            {
                "round": r,
                "step": r + 1,
                "count": sel["count"],
                "share": sel["count"] / max(a["pool"], 1),
                "per_class": sel["per_class"],
                "agreement_rate": a["agreement_rate"],
                "precision": sel.get("precision"),
                "stopped_early": bool(m.get("stopped_early", False)),
                "cv_waf": (m.get("cv") or {}).get("waf"),
                "test_waf": (m.get("test") or {}).get("waf"),
            }
        )
    return {"rounds": rows}
