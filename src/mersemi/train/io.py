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
from .vote import nested_auto, nested_fit, soft_vote

VOTE = "vote"


def prob_cols(clf: str) -> list[str]:
    return [f"prob_{clf}_{c}" for c in CLASSES]


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


def classifiers_of(df: pd.DataFrame) -> list[str]:
    out = []
    for col in df.columns:
        if col.startswith("prob_") and col.endswith(f"_{CLASSES[0]}"):
            clf = col[len("prob_") : -len(CLASSES[0]) - 1]
            if clf != VOTE:
                out.append(clf)
    return out


def probs_of(df: pd.DataFrame, clf: str) -> np.ndarray:
    return df[prob_cols(clf)].to_numpy(dtype=np.float64)


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


def revote(df: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Recompute prob_vote_* and pred with other weights."""
    have = classifiers_of(df)
    missing = [k for k in weights if k not in have]
    if missing:
        raise InputError(f"vote weights name classifier(s) {missing}; predictions hold {have}")
    voted = soft_vote({k: probs_of(df, k) for k in weights}, weights)
    df = df.copy()
    df[prob_cols(VOTE)] = voted
    df["pred"] = [CLASSES[i] for i in voted.argmax(1)]
    return df


def fitted_revote(df: pd.DataFrame, heads: list[str]) -> tuple[pd.DataFrame, dict]:
    """Vote with weights fitted on the out-of-fold rows, nested over folds (see
    vote.nested_fit); pool rows use the weights fitted on all out-of-fold rows."""
    oof = ((df["split"] == "train") & (df["fold"] >= 0) & (df["label"] != "")).to_numpy()
    if not oof.any():
        raise InputError("fitted vote weights need out-of-fold rows (split train, fold >= 0)")
    sub = df[oof]
    probs = {k: probs_of(sub, k) for k in heads}
    y = sub["label"].map(CLASS_INDEX).to_numpy()
    voted_oof, per_fold, w_all = nested_fit(probs, y, sub["fold"].to_numpy())
    out = revote(df, w_all)
    cols = prob_cols(VOTE)
    out.loc[oof, cols] = voted_oof
    out.loc[oof, "pred"] = [CLASSES[i] for i in voted_oof.argmax(1)]
    return out, {"weights": w_all, "fold_weights": per_fold}


def auto_revote(df: pd.DataFrame, paper: dict[str, float]) -> tuple[pd.DataFrame, dict]:
    """`use: auto`: the paper's weights or fitted ones, whichever scores better out of fold,
    the choice nested over folds (vote.nested_auto); pool rows follow the choice made on all
    out-of-fold rows."""
    oof = ((df["split"] == "train") & (df["fold"] >= 0) & (df["label"] != "")).to_numpy()
    if not oof.any():
        raise InputError("the auto vote needs out-of-fold rows (split train, fold >= 0)")
    sub = df[oof]
    probs = {k: probs_of(sub, k) for k in paper}
    y = sub["label"].map(CLASS_INDEX).to_numpy()
    voted_oof, per_fold, final = nested_auto(probs, y, sub["fold"].to_numpy(), paper)
    out = revote(df, final["weights"])
    cols = prob_cols(VOTE)
    out.loc[oof, cols] = voted_oof
    out.loc[oof, "pred"] = [CLASSES[i] for i in voted_oof.argmax(1)]
    return out, {**final, "fold_choices": per_fold}


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
