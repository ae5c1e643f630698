"""Wiring of MR-CCL's training: each test fails for one miswiring that leaves the losses'
own unit tests green (IMCL-AE on specific embeddings, IMCL-NE clean vs clean, NEE's t fixed,
no contrastive term in fine-tuning, early stopping on one head instead of the vote)."""

import numpy as np
import pytest
import torch

from mersemi.train import engine
from mersemi.train.engine import Features, contrastive_loss, predict, train_fold
from mersemi.train.folds import make_folds
from mersemi.train.metrics import waf
from mersemi.train.models import make_model
from mersemi.train.nee import alpha_bar
from mersemi.train.params import FinetuneParams, parse_params
from mersemi.train.vote import soft_vote

DIMS = {"acoustic": 12, "visual": 10, "text": 14}


def _params(**kw):
    base = {"device": "cpu", "progress": False, "hidden": 8, "d_model": 8, "heads": 2}
    return parse_params(FinetuneParams, {**base, **kw})


def _data(n=120, seed=0):
    """Labels carried by the acoustic features only weakly, by visual and text strongly: the
    heads disagree, so the vote and any single head rank epochs differently."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 6
    feats = {}
    for m, d in DIMS.items():
        signal = {"acoustic": 0.3, "visual": 1.5, "text": 1.5}[m]
        means = rng.normal(size=(6, d))
        feats[m] = (signal * means[y] + rng.normal(size=(n, d))).astype(np.float32)
    return feats, y


def _model_batch(p, seed=0):
    torch.manual_seed(seed)
    model = make_model("mrccl", DIMS, p)
    feats, _ = _data()
    x = {m: torch.from_numpy(v[:32]) for m, v in feats.items()}
    return model, x


def _gens(seed):
    g = torch.Generator().manual_seed(seed)
    return {"cpu": g, "dev": g}


def test_imcl_ae_is_fed_the_invariant_embeddings():
    """Only IMCL-AE reaches the invariant MLP (classifiers sit on the specific embeddings):
    its gradient there is non-zero iff the invariant embeddings are what it contrasts."""
    p = _params(nee=False)
    model, x = _model_batch(p)
    out = model(x)
    _, ae = contrastive_loss(
        model, x, out["specific"], out["invariant"], p, alpha_bar(100), _gens(0)
    )
    ae.backward()
    grads = [q.grad for q in model.invariant.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_imcl_ne_contrasts_clean_with_noisy():
    """IMCL-NE depends on the noise drawn: two noise draws give two losses; a clean-vs-clean
    contrast would give the same value whatever the draw."""
    p = _params()
    model, x = _model_batch(p)
    model.eval()  # no dropout: only the noise varies
    with torch.no_grad():
        out = model(x)
        ne = [
            contrastive_loss(
                model, x, out["specific"], out["invariant"], p, alpha_bar(100), _gens(s)
            )[0].item()
            for s in (1, 2)
        ]
    assert ne[0] > 0
    assert ne[0] != pytest.approx(ne[1], rel=1e-4)


def test_nee_draws_t_per_sample_over_the_whole_schedule(monkeypatch):
    """The noise step t of add_noise is drawn per sample over 1..T, not fixed (e.g. at T)."""
    seen = []
    real = engine.add_noise

    def spy(x, t, abar, noise=None):
        seen.append(t.clone())
        return real(x, t, abar, noise)

    monkeypatch.setattr(engine, "add_noise", spy)
    p = _params()
    model, x = _model_batch(p)
    out = model(x)
    contrastive_loss(model, x, out["specific"], out["invariant"], p, alpha_bar(100), _gens(0))
    t = torch.cat(seen)
    assert len(seen) == len(DIMS)
    assert t.min() >= 1 and t.max() <= p.nee_steps
    assert len(torch.unique(t)) > 10  # 32 draws from 1..100
    assert t.float().mean() < 0.8 * p.nee_steps


def _fold_setup(p):
    feats, y = _data()
    rows = np.arange(len(y))
    fold = make_folds(rows, y, 3, 0)[0]
    return Features(feats, torch.device("cpu")), y, fold


def test_fine_tuning_keeps_the_contrastive_term():
    """The temperatures get gradients from the contrastive losses only: they move during
    fine-tuning when contrastive_weight > 0 and stay put at 0."""
    moved = {}
    for w in (0.1, 0.0):
        p = _params(epochs=2, batch_size=32, lr=1e-2, contrastive_weight=w, patience=0)
        feats, y, fold = _fold_setup(p)
        torch.manual_seed(0)
        model = make_model("mrccl", DIMS, p)
        before = (model.tau_ne().item(), model.tau_ae().item())
        train_fold(model, feats, y, fold, p, torch.device("cpu"), p.weights, "mrccl")
        after = (model.tau_ne().item(), model.tau_ae().item())
        moved[w] = [abs(a - b) for a, b in zip(before, after, strict=True)]
    assert all(d > 1e-4 for d in moved[0.1])
    assert all(d == 0 for d in moved[0.0])


def test_early_stopping_scores_the_vote():
    """Every epoch's recorded validation WAF is the vote's; checked at the kept epoch, with
    weights where the vote (acoustic only, the weak modality) differs from the fusion head."""
    weights = {"A": 1.0}
    p = _params(epochs=6, batch_size=32, lr=1e-2, patience=0, weights=weights)
    feats, y, fold = _fold_setup(p)
    torch.manual_seed(0)
    model = make_model("mrccl", DIMS, p)
    res = train_fold(model, feats, y, fold, p, torch.device("cpu"), weights, "mrccl")
    probs = predict(model, feats, fold.val, p, torch.device("cpu"))
    voted = waf(y[fold.val], soft_vote(probs, weights).argmax(1))
    assert res.best_waf == pytest.approx(voted)
    assert res.best_waf == max(h["val_waf"] for h in res.history)
    # The data make the heads differ, so scoring F would have given another figure.
    assert waf(y[fold.val], probs["F"].argmax(1)) != pytest.approx(voted)
