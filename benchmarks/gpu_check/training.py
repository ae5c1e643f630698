"""training: `mersemi synth` at MER2024 size with CUDA amp (s/epoch), and a small case on the
CPU and on the device whose losses and probabilities must agree within TOLERANCE."""

from __future__ import annotations

import time
from pathlib import Path

from .part import TOLERANCE, Part, lazy_torch, peak_mb, rel_diff, reset_peak


def run(P: Part, dev) -> None:
    from mersemi.demo.synth import MAX_UNLABELED, SynthConfig, make_synth
    from mersemi.train.data import load_dataset

    smoke, work = P.args.smoke, Path(P.args.work) / "synth"
    t0 = time.perf_counter()
    cfg = SynthConfig(n_unlabeled=300 if smoke else MAX_UNLABELED, n_test=100 if smoke else 1169)
    make_synth(work, cfg)
    ds = load_dataset(
        work / "acoustic.h5", work / "visual.h5", work / "text.h5", work / "manifest.csv"
    )
    P.detail(
        "data",
        {
            "clips": len(ds),
            "labeled": int(len(ds.labeled())),
            "pool": int(len(ds.pool())),
            "dims": ds.dims,
            "synth_and_load_s": time.perf_counter() - t0,
        },
    )
    epochs = 1 if smoke else 2
    if P.room("pretrain + fold at full size", 10 if smoke else 40):
        train_full(P, dev, ds, epochs)
    if P.room("small case CPU vs device", 10 if smoke else 20):
        cpu_vs_device(P, dev, ds)


def train_full(P: Part, dev, ds, epochs: int) -> None:
    from mersemi.classes import CLASS_INDEX
    from mersemi.train.engine import Features, train_fold
    from mersemi.train.folds import make_folds
    from mersemi.train.models import make_model
    from mersemi.train.params import FinetuneParams, PretrainParams, parse_params
    from mersemi.train.pipeline import run_pretrain
    from mersemi.train.runtime import seed_all

    common = {"device": dev.type, "progress": False, "threads": P.args.threads, "amp": True}
    if P.args.smoke:
        common |= {"hidden": 16, "d_model": 16}
    pp = parse_params(PretrainParams, {**common, "epochs": epochs})
    reset_peak(dev)
    ck, stats = run_pretrain(ds, pp)
    P.row(
        what="train pretrain (MR-CCL)",
        precision="bf16 amp" if dev.type == "cuda" else "fp32",
        batched=stats["seconds"] / epochs,
        unit="s/epoch",
        peak_gpu_mb=peak_mb(dev),
        note=f"{stats['clips']} clips, batch {pp.batch_size}, {epochs} epoch(s), "
        f"{stats['clips_per_s']:.0f} clips/s",
    )
    fp = parse_params(FinetuneParams, {**common, "epochs": epochs, "patience": 0})
    labeled = ds.labeled()
    targets = {CLASS_INDEX[c]: fp.oversample_target for c in fp.oversample_classes}
    folds = make_folds(
        labeled, ds.labels[labeled], fp.folds, fp.seed, targets, scope=fp.oversample_scope
    )
    seed_all(fp.seed)
    model = make_model("mrccl", ds.dims, fp).to(dev)
    model.load_state_dict(ck["state"])
    feats = Features(ds.features, dev)
    reset_peak(dev)
    t0 = time.perf_counter()
    res = train_fold(model, feats, ds.labels, folds[0], fp, dev, fp.weights, "mrccl")
    secs = time.perf_counter() - t0
    P.row(
        what="train fine-tune fold 1/5",
        precision="bf16 amp" if dev.type == "cuda" else "fp32",
        batched=secs / epochs,
        unit="s/epoch",
        peak_gpu_mb=peak_mb(dev),
        note=f"{len(folds[0].train)} training rows (oversampled), {len(folds[0].val)} "
        f"validation, {epochs} epoch(s), best val WAF {res.best_waf:.3f}",
    )


def cpu_vs_device(P: Part, dev, ds) -> None:
    import numpy as np

    from mersemi.train.data import Dataset
    from mersemi.train.engine import Features, predict, train_fold
    from mersemi.train.folds import make_folds
    from mersemi.train.models import make_model
    from mersemi.train.params import FinetuneParams, PretrainParams, parse_params
    from mersemi.train.pipeline import run_pretrain
    from mersemi.train.runtime import seed_all

    rng = np.random.default_rng(0)
    lab, pool = ds.labeled(), ds.pool()
    n_lab, n_pool = (300, 100) if P.args.smoke else (900, 300)
    rows = np.sort(
        np.concatenate(
            [
                rng.choice(lab, n_lab, replace=False),
                rng.choice(pool, min(n_pool, len(pool)), replace=False),
            ]
        )
    )
    small = Dataset(
        ds.names[rows],
        {m: x[rows] for m, x in ds.features.items()},
        {m: v[rows] for m, v in ds.valid.items()},
        ds.split[rows],
        ds.labels[rows],
    )
    other = dev if dev.type == "cuda" else lazy_torch().device("cpu")
    common = {
        "progress": False,
        "threads": P.args.threads,
        "amp": False,
        "nee": False,
        "dropout": 0.0,
        "hidden": 32,
        "d_model": 32,
        "batch_size": 128,
    }
    out = {}
    for name, d in (("cpu", "cpu"), ("device", other.type)):
        pp = parse_params(PretrainParams, {**common, "device": d, "epochs": 2})
        ck, stats = run_pretrain(small, pp)
        fp = parse_params(FinetuneParams, {**common, "device": d, "epochs": 2, "patience": 0})
        labeled = small.labeled()
        fold = make_folds(labeled, small.labels[labeled], fp.folds, fp.seed, None)[0]
        device = lazy_torch().device(d)
        seed_all(fp.seed)
        model = make_model("mrccl", small.dims, fp).to(device)
        model.load_state_dict(ck["state"])
        feats = Features(small.features, device)
        res = train_fold(model, feats, small.labels, fold, fp, device, fp.weights, "mrccl")
        probs = predict(model, feats, fold.val, fp, device)
        out[name] = {
            "pretrain": [h["imcl_ae"] for h in stats["history"]],
            "finetune": [h["loss"] for h in res.history],
            "probs": np.concatenate([probs[k] for k in sorted(probs)], 1),
        }
    loss_rel = max(
        rel_diff(out["device"]["pretrain"], out["cpu"]["pretrain"]),
        rel_diff(out["device"]["finetune"], out["cpu"]["finetune"]),
    )
    prob_abs = float(np.abs(out["device"]["probs"] - out["cpu"]["probs"]).max())
    ok = loss_rel <= TOLERANCE["loss_rel"] and prob_abs <= TOLERANCE["prob_abs"]
    P.detail(
        "cpu_vs_device",
        {
            "device": str(other),
            "loss_rel_diff": loss_rel,
            "prob_max_abs_diff": prob_abs,
            "tolerance": TOLERANCE,
            "within_tolerance": ok,
            "clips": len(small),
        },
    )
    P.row(
        what=f"train small case cpu vs {other}",
        precision="fp32",
        batched=prob_abs,
        unit="max |dprob|",
        note=f"losses rel {loss_rel:.1e} (<= {TOLERANCE['loss_rel']}), probabilities "
        f"{prob_abs:.1e} (<= {TOLERANCE['prob_abs']}): {'ok' if ok else 'FAIL'}"
        + ("" if other.type == "cuda" else "; smoke: cpu vs cpu, the comparison only"),
    )
