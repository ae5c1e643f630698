"""Whole steps on an in-memory Dataset: pretrain, baseline CV, fine-tune CV, pseudo labels.

The CLI and the benchmark both call these; they return results, the CLI writes them.
"""

import json
import logging
from dataclasses import asdict

import numpy as np
import pandas as pd

from ..classes import CLASS_INDEX, CLASSES
from ..errors import InputError
from .data import Dataset
from .engine import pretrain, run_cv
from .folds import make_folds
from .io import evaluate, no_valid_modality, predictions_frame
from .models import make_model
from .runtime import seed_all, setup
from .selftrain import (
    audit_consensus,
    balanced_keep,
    calibrate,
    consensus,
    fit_temperature,
    fitted_thresholds,
    keep_confident,
    logit_sum,
)
from .vote import classifiers_of, probs_of

log = logging.getLogger(__name__)

ARCH_KEYS = ("hidden", "d_model", "layers", "heads", "fusion_invariant")


def _arch(p) -> dict:
    return {k: getattr(p, k) for k in ARCH_KEYS}


def run_pretrain(ds: Dataset, p) -> tuple[dict, dict]:
    """Contrastive pretraining on the pool (+ labeled clips). Returns (checkpoint, metrics)."""
    device = setup(p)
    rows = ds.pool(include_test=p.include_test)
    if p.include_labeled:  # by split, not label: the workflow passes a manifest without labels
        rows = np.concatenate([np.flatnonzero(ds.split == "train"), rows])
    if len(rows) < 2:
        raise InputError("pretraining needs at least 2 clips")
    seed_all(p.seed)
    model = make_model("mrccl", ds.dims, p).to(device)
    from .engine import Features

    stats = pretrain(model, Features(ds.features, device), rows, p, device)
    ck = {
        "kind": "mrccl-pretrain",
        "arch": _arch(p),
        "dims": ds.dims,
        "params": json.dumps(asdict(p)),
        "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    log.info("pretrain: %d clips, %.1f clips/s", stats["clips"], stats["clips_per_s"])
    return ck, {"params": asdict(p), "device": str(device), **stats}


def _targets(p) -> dict[int, int] | None:
    if not p.oversample:
        return None
    return {CLASS_INDEX[c]: p.oversample_target for c in p.oversample_classes}


def _pseudo_rows(ds: Dataset, pseudo: pd.DataFrame | None):
    if pseudo is None or not len(pseudo):
        return None, None
    rows = ds.rows(list(pseudo["name"]))
    bad = ds.split[rows] == "train"
    if bad.any():
        raise InputError(
            f"pseudo labels name {int(bad.sum())} labeled training clip(s), e.g. "
            f"{list(pseudo['name'][bad][:5])}"
        )
    unknown = sorted(set(pseudo["discrete"]) - set(CLASSES))
    if unknown:
        raise InputError(f"pseudo labels: unknown class(es) {unknown}")
    return rows, pseudo["discrete"].map(CLASS_INDEX).to_numpy(np.int64)


def _cv_outputs(kind, ds, p, res, weights, device, extra) -> tuple[dict, pd.DataFrame, dict]:
    labeled, pool = ds.labeled(), ds.pool(include_test=True)
    rows = np.concatenate([labeled, pool])
    probs = {
        k: np.concatenate([res.oof[k], res.pool[k]]) if len(pool) else res.oof[k] for k in res.oof
    }
    fold = np.concatenate([res.oof_fold, np.full(len(pool), -1)])
    n_valid = sum(ds.valid[m][rows].astype(int) for m in ds.valid)
    df = predictions_frame(
        ds.names[rows], ds.split[rows], ds.labels[rows], fold, probs, weights, n_valid
    )
    metrics = {
        "kind": kind,
        "params": asdict(p),
        "device": str(device),
        **extra,
        **evaluate(df),
        "folds": res.folds,
    }
    ck = {
        "kind": kind,
        "arch": _arch(p) if kind == "mrccl" else {"hidden": p.hidden},
        "dims": ds.dims,
        "params": json.dumps(asdict(p)),
        "seed": p.seed,
        "n_folds": p.folds,
        "folds": res.states,
    }
    cv = metrics["cv"]["waf"]
    log.info(
        "%s: CV WAF %.4f%s",
        kind,
        cv,
        f", test WAF {metrics['test']['waf']:.4f}" if metrics.get("test") else "",
    )
    return ck, df, metrics


def run_baseline(ds: Dataset, p) -> tuple[dict, pd.DataFrame, dict]:
    device = setup(p)
    labeled = ds.labeled()
    folds = make_folds(
        labeled, ds.labels[labeled], p.folds, p.seed, _targets(p), scope=p.oversample_scope
    )
    res = run_cv("baseline", ds, folds, p, device, {"B": 1.0})
    return _cv_outputs("baseline", ds, p, res, {"B": 1.0}, device, {})


def run_finetune(
    ds: Dataset,
    p,
    pretrained: dict | None = None,
    init: dict | None = None,
    pseudo: pd.DataFrame | None = None,
) -> tuple[dict, pd.DataFrame, dict]:
    """Fine-tune MR-CCL with k-fold CV (step 1, or step 2 with pseudo labels)."""
    device = setup(p)
    labeled = ds.labeled()
    prow, plab = _pseudo_rows(ds, pseudo)
    folds = make_folds(
        labeled,
        ds.labels[labeled],
        p.folds,
        p.seed,
        _targets(p),
        prow,
        plab,
        scope=p.oversample_scope,
    )
    pre_state, init_states = None, None
    if init is not None and p.init_from_step1:
        _check_arch(init, p, ds, "--init")
        if init["seed"] != p.seed or init["n_folds"] != p.folds:
            raise InputError(
                f"--init checkpoint was trained with seed {init['seed']} and {init['n_folds']} "
                f"folds; this step has seed {p.seed} and {p.folds} folds (the folds must match)"
            )
        init_states = init["folds"]
    elif pretrained is not None and p.pretrained:
        _check_arch(pretrained, p, ds, "--pretrained")
        pre_state = pretrained["state"]
    extra = {
        "step": p.step,
        "initialised_from": "step1" if init_states else ("pretrain" if pre_state else "scratch"),
        "pseudo_labels": 0 if prow is None else int(len(prow)),
    }
    log.info(
        "finetune step %d from %s, %d pseudo label(s)",
        p.step,
        extra["initialised_from"],
        extra["pseudo_labels"],
    )
    res = run_cv("mrccl", ds, folds, p, device, p.weights, init_states, pre_state)
    return _cv_outputs("mrccl", ds, p, res, p.weights, device, extra)


def _check_arch(ck: dict, p, ds: Dataset, flag: str) -> None:
    if ck["arch"] != _arch(p) or ck["dims"] != ds.dims:
        raise InputError(
            f"{flag} checkpoint has architecture {ck['arch']} and dims {ck['dims']}; this step "
            f"has {_arch(p)} and dims {ds.dims}"
        )


def _oof(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["split"] == "train") & (df["fold"] >= 0) & (df["label"] != "")]


def _score(df: pd.DataFrame, pool: pd.DataFrame, p) -> tuple[np.ndarray, dict]:
    """Probabilities whose max is the confidence of one model's pool rows (p.score)."""
    heads = classifiers_of(df)
    if p.score == "prob_vote":
        return probs_of(pool, "vote"), {}
    if p.score == "logit_sum":
        w = {k: v for k, v in p.weights.items() if k in heads} if len(heads) > 1 else {heads[0]: 1}
        return logit_sum({k: probs_of(pool, k) for k in w}, w), {"weights": w}
    oof = _oof(df)
    if not len(oof):
        raise InputError("score calibrated needs out-of-fold rows (split train) in predictions")
    temp = fit_temperature(probs_of(oof, "vote"), oof["label"].map(CLASS_INDEX).to_numpy())
    return calibrate(probs_of(pool, "vote"), temp), {"temperature": temp}


def run_pseudo(
    mrccl: pd.DataFrame,
    base: pd.DataFrame,
    p,
    truth: pd.DataFrame | None = None,
    probe: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Pseudo labels from the predictions frames (fold-averaged pool rows) of the models
    `p.agree` lists: MR-CCL, the baseline and the linear probe (`probe`)."""
    given = {"mrccl": mrccl, "baseline": base, "probe": probe}
    missing = [k for k in p.agree if given[k] is None]
    if missing:
        raise InputError(f"pseudo.agree lists {missing}: its predictions are needed (--probe)")
    frames = {k: given[k] for k in p.agree}
    splits = ("unlabeled", "test") if p.include_test else ("unlabeled",)
    pools = {k: f[f["split"].isin(splits)].set_index("name") for k, f in frames.items()}
    first = p.agree[0]
    for k, pool in pools.items():
        if set(pool.index) != set(pools[first].index):
            diff = sorted(set(pool.index) ^ set(pools[first].index))
            raise InputError(
                f"the predictions files of {first} and {k} cover different pool clips "
                f"({len(diff)} differ, e.g. {diff[:5]})"
            )
    index = pools[first].index
    pools = {k: pool.loc[index] for k, pool in pools.items()}
    # A clip without any valid feature gets the model's prior, not evidence: never a label.
    blind = np.zeros(len(index), bool)
    for pool in pools.values():
        blind |= np.asarray(no_valid_modality(pool))
    if blind.any():
        log.warning("pseudo labels: %d pool clip(s) without a valid modality excluded", blind.sum())
        pools = {k: pool[~blind] for k, pool in pools.items()}
    index = pools[first].index
    scored = {k: _score(frames[k], pools[k], p) for k in p.agree}
    probs = {k: v[0] for k, v in scored.items()}
    mi = p.agree.index("mrccl") if "mrccl" in p.agree else None

    def vote_of(probs):
        return consensus([probs[k] for k in p.agree], p.needed, p.confidence, mi)

    agree, pred, conf = vote_of(probs)
    thr = np.array([p.thresholds[c] for c in CLASSES])
    keep = keep_confident(agree, pred, conf, thr)
    selection = {"name": p.selection}
    if p.selection == "balanced":
        oof = _oof(frames[first])
        prior = np.bincount(oof["label"].map(CLASS_INDEX), minlength=len(CLASSES))
        budget = int(round(p.budget * len(index)))
        keep = balanced_keep(agree, pred, conf, budget, prior)
        selection |= {"budget": budget, "prior": (prior / prior.sum()).round(4).tolist()}
    elif p.selection == "precision":
        oofs = {k: _oof(f).set_index("name") for k, f in frames.items()}
        common = oofs[first].index
        for o in oofs.values():
            common = common.intersection(o.index)
        if not len(common):
            raise InputError("selection precision needs out-of-fold rows in every predictions")
        oofs = {k: o.loc[common].reset_index() for k, o in oofs.items()}
        fitted = vote_of({k: _score(frames[k], oofs[k], p)[0] for k in p.agree})
        y = oofs[first]["label"].map(CLASS_INDEX).to_numpy()
        thr = fitted_thresholds(*fitted, y, p.precision_target, p.min_support, len(CLASSES))
        keep = keep_confident(agree, pred, conf, thr)
        selection |= {
            "target": p.precision_target,
            "fitted_thresholds": dict(zip(CLASSES, thr.tolist(), strict=True)),
        }
    y_true = None
    if truth is not None:
        t = truth.set_index("name")["discrete"].reindex(index)
        y_true = t.map(CLASS_INDEX).fillna(-1).astype(int).to_numpy()
    report = audit_consensus(probs, p.needed, thr, p.confidence, p.sweep, y_true, keep)
    report["selection"] = selection
    report["include_test"] = p.include_test
    report["excluded_no_valid_modality"] = int(blind.sum())
    report["score"] = {"name": p.score, **{k: v[1] for k, v in scored.items()}}
    report["selected"]["share"] = report["selected"]["count"] / max(report["pool"], 1)
    out = pd.DataFrame(
        {
            "name": index[keep],
            "discrete": [CLASSES[i] for i in pred[keep]],
            **{f"confidence_{k}": probs[k].max(1)[keep] for k in p.agree},
        }
    )
    log.info(
        "pseudo labels (%s): %d of %d pool clips (agreement %.3f)",
        p.score,
        len(out),
        len(index),
        report["agreement_rate"],
    )
    return out, report
