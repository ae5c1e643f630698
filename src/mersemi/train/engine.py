"""Training loops: contrastive pretraining, fold training with early stopping, prediction."""

import copy
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..classes import CLASSES
from ..progress import progress
from .folds import Fold
from .losses import imcl_ae, imcl_ne
from .metrics import waf
from .moddrop import drop_modalities
from .models import MRCCL, make_model
from .nee import add_noise, alpha_bar, sample_steps
from .runtime import autocast, seed_all
from .vote import soft_vote

log = logging.getLogger(__name__)


class Features:
    """Features on the device; `batch(rows)` gathers a mini-batch; `valid` (bool per row,
    per modality, on the CPU) where given."""

    def __init__(self, features: dict[str, np.ndarray], device: torch.device, valid=None):
        self.device = device
        self.x = {m: torch.from_numpy(v).to(device) for m, v in features.items()}
        self.valid = {m: torch.from_numpy(np.asarray(v, bool)) for m, v in (valid or {}).items()}

    def valid_of(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        n = len(idx)
        return {m: self.valid[m][idx] if m in self.valid else torch.ones(n, dtype=torch.bool)
                for m in self.x}  # fmt: skip

    def batch(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(rows), dtype=torch.long, device=self.device)
        return {m: x.index_select(0, idx) for m, x in self.x.items()}

    @torch.no_grad()
    def stats(self, rows: np.ndarray, chunk: int = 4096) -> dict[str, tuple]:
        """Per-modality mean and std over the distinct `rows` (float64 sums, chunked)."""
        rows = np.unique(np.asarray(rows))
        out = {}
        for m, x in self.x.items():
            s = torch.zeros(x.shape[1], dtype=torch.float64, device=self.device)
            s2 = torch.zeros_like(s)
            for i in range(0, len(rows), chunk):
                v = self.batch(rows[i : i + chunk])[m].double()
                s += v.sum(0)
                s2 += (v * v).sum(0)
            mean = s / len(rows)
            var = (s2 / len(rows) - mean * mean).clamp_min(0)
            out[m] = (mean.float(), var.sqrt().float())
        return out


def contrastive_loss(model: MRCCL, x: dict, spec: list, inv: list, p, abar, gen) -> tuple:
    """(IMCL-NE, IMCL-AE) for one batch; IMCL-NE is 0 when NEE is off."""
    ae = imcl_ae(inv, model.proj, model.tau_ae())
    if not p.nee:
        return torch.zeros((), device=ae.device), ae
    b = len(next(iter(x.values())))
    t = sample_steps(b, p.nee_steps, gen["cpu"])
    # Noise on the standardised input, so sqrt(1 - abar_t) means the same for every modality.
    noisy = {
        m: add_noise(v, t, abar, torch.randn(v.shape, generator=gen["dev"], device=v.device))
        for m, v in model.norm(x).items()
    }
    ne = imcl_ne(spec, model.embed(noisy, normed=True), model.tau_ne())
    return ne, ae


def _generators(seed: int, device: torch.device) -> dict:
    cpu = torch.Generator().manual_seed(seed)
    dev = cpu if device.type == "cpu" else torch.Generator(device=device).manual_seed(seed)
    return {"cpu": cpu, "dev": dev}


def _batches(rows: np.ndarray, bs: int, gen: torch.Generator | None, min_size: int = 1):
    order = rows if gen is None else rows[torch.randperm(len(rows), generator=gen).numpy()]
    for s in range(0, len(order), bs):
        chunk = order[s : s + bs]
        if len(chunk) >= min_size:
            yield chunk


def pretrain(model: MRCCL, feats: Features, rows: np.ndarray, p, device) -> dict:
    """Contrastive pretraining (no labels): w_ne IMCL-NE + w_ae IMCL-AE per batch."""
    seed_all(p.seed)
    gen = _generators(p.seed, device)
    abar = alpha_bar(p.nee_steps, p.beta_start, p.beta_end).to(device)
    model.norm.fit(feats.stats(rows))
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    history, seen, t0 = [], 0, time.perf_counter()
    bar = progress(range(p.epochs), desc="pretrain", unit="epoch", disable=not p.progress)
    for epoch in bar:
        model.train()
        tot = {"ne": 0.0, "ae": 0.0, "n": 0}
        for chunk in _batches(rows, p.batch_size, gen["cpu"], min_size=2):
            x = feats.batch(chunk)
            with autocast(device, p.amp):
                spec = model.embed(x)
                inv = [model.invariant(s) for s in spec]
                ne, ae = contrastive_loss(model, x, spec, inv, p, abar, gen)
                loss = p.weight_ne * ne + p.weight_ae * ae
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n = len(chunk)
            seen += n
            tot["ne"] += float(ne.detach()) * n
            tot["ae"] += float(ae.detach()) * n
            tot["n"] += n
        row = {
            "epoch": epoch + 1,
            "imcl_ne": tot["ne"] / max(tot["n"], 1),
            "imcl_ae": tot["ae"] / max(tot["n"], 1),
            "tau_ne": model.tau_ne().item(),
            "tau_ae": model.tau_ae().item(),
        }
        history.append(row)
        bar.set_postfix(ne=f"{row['imcl_ne']:.3f}", ae=f"{row['imcl_ae']:.3f}")
        log.info(
            "pretrain epoch %d: IMCL-NE %.4f IMCL-AE %.4f",
            epoch + 1,
            row["imcl_ne"],
            row["imcl_ae"],
        )
    secs = time.perf_counter() - t0
    return {
        "history": history,
        "seconds": secs,
        "clips_per_s": seen / secs if secs else 0.0,
        "clips": int(len(rows)),
    }


@torch.no_grad()
def predict(model, feats: Features, rows: np.ndarray, p, device) -> dict[str, np.ndarray]:
    """Softmax probabilities of every classifier of `model` on `rows` (float64, N x C)."""
    model.eval()
    out: dict[str, list] = {}
    for chunk in _batches(rows, p.eval_batch_size, None):
        with autocast(device, p.amp):
            logits = model(feats.batch(chunk))["logits"]
        for k, v in logits.items():
            out.setdefault(k, []).append(F.softmax(v.float(), -1).cpu().numpy())
    return {k: np.concatenate(v).astype(np.float64) for k, v in out.items()}


@dataclass
class FoldResult:
    state: dict
    best_epoch: int
    best_waf: float
    history: list = field(default_factory=list)


def train_fold(
    model,
    feats: Features,
    labels: np.ndarray,
    fold: Fold,
    p,
    device,
    weights: dict,
    kind: str,
    desc: str = "",
) -> FoldResult:
    """Train on fold.train, early-stop on the WAF of the voted validation output."""
    gen = _generators(p.seed * 1000 + fold.k, device)
    abar = alpha_bar(p.nee_steps, p.beta_start, p.beta_end).to(device) if kind == "mrccl" else None
    # Standardisation statistics of this training fold (labeled + pseudo rows, no duplicates).
    model.norm.fit(feats.stats(fold.train))
    opt = torch.optim.Adam(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    y_val = labels[fold.val]
    p_drop = getattr(p, "modality_dropout", 0.0)
    drop_gen = torch.Generator().manual_seed(p.seed * 1000 + fold.k + 30_000) if p_drop else None
    best = FoldResult(copy.deepcopy(model.state_dict()), 0, -1.0)
    bad = 0
    bar = progress(
        range(p.epochs), desc=desc or f"fold {fold.k}", unit="epoch", disable=not p.progress
    )
    for epoch in bar:
        model.train()
        tot, n_tot = 0.0, 0
        pos = np.arange(len(fold.train))
        for chunk in _batches(pos, p.batch_size, gen["cpu"], min_size=2):
            rows = fold.train[chunk]
            x = feats.batch(rows)
            if p_drop:  # training batches only; zeros, as a clip without valid features
                x, _ = drop_modalities(x, feats.valid_of(rows), p_drop, drop_gen)
            y = torch.as_tensor(fold.train_labels[chunk], device=device)
            with autocast(device, p.amp):
                out = model(x)
                ce = torch.stack([F.cross_entropy(v.float(), y) for v in out["logits"].values()])
                loss = ce.mean()
                if kind == "mrccl" and p.contrastive_weight > 0:
                    ne, ae = contrastive_loss(
                        model, x, out["specific"], out["invariant"], p, abar, gen
                    )
                    loss = loss + p.contrastive_weight * (ne + ae)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(chunk)
            n_tot += len(chunk)
        probs = predict(model, feats, fold.val, p, device)
        score = waf(y_val, soft_vote(probs, weights).argmax(1))
        best.history.append({"epoch": epoch + 1, "loss": tot / max(n_tot, 1), "val_waf": score})
        bar.set_postfix(loss=f"{tot / max(n_tot, 1):.3f}", waf=f"{score:.4f}")
        if score > best.best_waf:
            best.state, best.best_epoch, best.best_waf = (
                copy.deepcopy(model.state_dict()),
                epoch + 1,
                score,
            )
            bad = 0
        else:
            bad += 1
            if p.patience and bad >= p.patience:
                break
    log.info(
        "%s: best val WAF %.4f at epoch %d",
        desc or f"fold {fold.k}",
        best.best_waf,
        best.best_epoch,
    )
    model.load_state_dict(best.state)
    return best


@dataclass
class CVResult:
    states: list[dict]
    oof: dict[str, np.ndarray]  # classifier -> probs over `labeled` rows
    oof_fold: np.ndarray  # validation fold of each labeled row
    pool: dict[str, np.ndarray]  # classifier -> fold-averaged probs over `pool` rows
    folds: list[dict]  # per-fold best epoch, val WAF, history


def run_cv(
    kind: str,
    ds,
    folds: list[Fold],
    p,
    device,
    weights: dict,
    init_states=None,
    pretrained=None,
) -> CVResult:
    """Train one model per fold; out-of-fold probabilities for the labeled rows and
    fold-averaged probabilities for every pool row (unlabeled and test splits)."""
    feats = Features(ds.features, device, ds.valid)
    labeled, pool = ds.labeled(), ds.pool(include_test=True)
    pos = {r: i for i, r in enumerate(labeled)}
    oof: dict[str, np.ndarray] = {}
    oof_fold = np.full(len(labeled), -1)
    pool_sum: dict[str, np.ndarray] = {}
    states, info = [], []
    for fold in folds:
        seed_all(p.seed * 1000 + fold.k)
        model = make_model(kind, ds.dims, p).to(device)
        if init_states is not None:
            model.load_state_dict(init_states[fold.k])
        elif pretrained is not None:
            model.load_state_dict(pretrained)
        res = train_fold(
            model,
            feats,
            ds.labels,
            fold,
            p,
            device,
            weights,
            kind,
            desc=f"{kind} step{getattr(p, 'step', 1)} fold {fold.k + 1}/{len(folds)}",
        )
        at = np.array([pos[r] for r in fold.val])
        for k, v in predict(model, feats, fold.val, p, device).items():
            oof.setdefault(k, np.zeros((len(labeled), v.shape[1])))[at] = v
        oof_fold[at] = fold.k
        if len(pool):
            for k, v in predict(model, feats, pool, p, device).items():
                pool_sum[k] = pool_sum.get(k, 0) + v / len(folds)
        states.append({k: v.detach().cpu() for k, v in res.state.items()})
        info.append(
            {
                "fold": fold.k,
                "best_epoch": res.best_epoch,
                "val_waf": res.best_waf,
                "train_rows": int(len(fold.train)),
                # after oversampling and pseudo labels: the report shows the distribution
                "train_counts": {
                    c: int((fold.train_labels == i).sum()) for i, c in enumerate(CLASSES)
                },
                "val_rows": int(len(fold.val)),
                "history": res.history,
            }
        )
    return CVResult(states, oof, oof_fold, pool_sum, info)
