"""The I/O edge: predictions CSVs, metrics, checkpoints (all written atomically)."""

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..atomic import atomic_path, write_csv_atomic
from ..classes import CLASS_INDEX, CLASSES
from ..errors import InputError
from ..provenance import provenance
from ..tables import read_csv_table
from .metrics import report
from .vote import VOTE, classifiers_of, prob_cols, probs_of, soft_vote


def predictions_frame(
    names,
    split,
    labels: np.ndarray,
    fold: np.ndarray,
    probs: dict[str, np.ndarray],
    weights: dict[str, float],
    n_valid: np.ndarray | None = None,
) -> pd.DataFrame:
    """name, split, label ('' unknown), fold (-1: pool row, fold-averaged), pred, n_valid
    (modalities with valid features; 0: the prediction is only the model's prior), and
    prob_<clf>_<class> per classifier plus prob_vote_<class>."""
    voted = soft_vote(probs, weights)
    df = pd.DataFrame(
        {
            "name": list(names),
            "split": list(split),
            "label": [CLASSES[i] if i >= 0 else "" for i in labels],
            "fold": fold.astype(int),
            "pred": [CLASSES[i] for i in voted.argmax(1)],
        }
    )
    if n_valid is not None:
        df["n_valid"] = np.asarray(n_valid, dtype=int)
    blocks = [pd.DataFrame(v, columns=prob_cols(k)) for k, v in probs.items()]
    blocks.append(pd.DataFrame(voted, columns=prob_cols(VOTE)))
    return pd.concat([df, *blocks], axis=1)


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    df = read_csv_table(path, ["name", "split", "label", "fold", "pred"], "predictions CSV")
    for clf in [*classifiers_of(df), VOTE]:
        missing = [c for c in prob_cols(clf) if c not in df.columns]
        if missing:
            raise InputError(f"predictions CSV {path}: missing column(s) {missing}")
        df[prob_cols(clf)] = df[prob_cols(clf)].astype(np.float64)
    df["fold"] = df["fold"].astype(int)
    if "n_valid" in df.columns:
        df["n_valid"] = df["n_valid"].astype(int)
    return df


def no_valid_modality(df: pd.DataFrame) -> np.ndarray:
    """Rows whose clip had no valid feature in any modality (False where unknown)."""
    if "n_valid" not in df.columns:
        return np.zeros(len(df), dtype=bool)
    return df["n_valid"].to_numpy() == 0


def evaluate(df: pd.DataFrame) -> dict:
    """CV metrics on the out-of-fold rows (split train) and test metrics where test labels
    exist, for the voted output and each classifier."""
    out = {}
    for part, mask in (
        ("cv", (df["split"] == "train") & (df["fold"] >= 0)),
        ("test", (df["split"] == "test") & (df["label"] != "")),
    ):
        sub = df[mask]
        if not len(sub):
            out[part] = None
            continue
        y = sub["label"].map(CLASS_INDEX).to_numpy()
        out[part] = report(y, probs_of(sub, VOTE).argmax(1))
        out[part]["per_classifier_waf"] = {
            clf: report(y, probs_of(sub, clf).argmax(1))["waf"] for clf in classifiers_of(df)
        }
        if part == "cv":
            out[part]["fold_waf"] = {
                int(k): report(g["label"].map(CLASS_INDEX).to_numpy(), probs_of(g, VOTE).argmax(1))[
                    "waf"
                ]
                for k, g in sub.groupby("fold")
            }
    return out


def submission(df: pd.DataFrame) -> pd.DataFrame:
    """name,discrete for every clip outside the labeled training set (the challenge format)."""
    sub = df[df["split"] != "train"]
    return pd.DataFrame({"name": sub["name"].to_numpy(), "discrete": sub["pred"].to_numpy()})


def submission_status(df: pd.DataFrame) -> pd.DataFrame:
    """The submission's sidecar: name,status for the same rows, status `ok` or
    `no_valid_modality` (no feature of the clip was valid: its label is a guess)."""
    sub = df[df["split"] != "train"]
    bad = no_valid_modality(sub)
    return pd.DataFrame(
        {"name": sub["name"].to_numpy(), "status": np.where(bad, "no_valid_modality", "ok")}
    )


def write_json(obj, path: str | os.PathLike) -> None:
    """Atomic JSON; a dict (metrics, audits) gains `provenance` (code, options hash, versions,
    device)."""
    if isinstance(obj, dict) and "provenance" not in obj:
        obj = {**obj, "provenance": provenance(obj.get("params"))}
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", "utf-8")


def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> None:
    write_csv_atomic(df, path)


def save_checkpoint(obj: dict, path: str | os.PathLike) -> None:
    """State dicts plus plain metadata, loadable with torch.load(weights_only=True)."""
    # Serialised in memory, then written by Python: torch.save's own writer reports a full disk
    # as a RuntimeError without errno, which the CLI could not tell from a bug.
    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(buf.getbuffer())


def load_checkpoint(path: str | os.PathLike, kind: str) -> dict:
    path = Path(path)
    if not path.exists():
        raise InputError(f"checkpoint {path}: not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise InputError(f"checkpoint {path}: cannot load ({e})") from None
    if not isinstance(ck, dict) or ck.get("kind") != kind:
        got = ck.get("kind") if isinstance(ck, dict) else type(ck).__name__
        raise InputError(f"checkpoint {path}: holds {got!r}, expected {kind!r}")
    return ck
