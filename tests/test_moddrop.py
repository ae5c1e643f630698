"""Modality dropout (`finetune.modality_dropout`): the share dropped, the rows it spares, and
that p = 0 and evaluation batches see the features unchanged."""

import numpy as np
import pytest
import torch

from mersemi.train import engine
from mersemi.train.data import build_dataset
from mersemi.train.folds import make_folds
from mersemi.train.moddrop import drop_modalities, dropout_mask
from mersemi.train.params import parse_finetune

MODS = ("acoustic", "visual", "text")


def test_mask_share_spares_missing_entries_and_keeps_one_per_row():
    rng = np.random.default_rng(0)
    n = 40_000
    valid = torch.from_numpy(rng.random((n, 3)) > 0.2)  # 20 % already missing
    gen = torch.Generator().manual_seed(0)
    for p in (0.1, 0.5):
        drop = dropout_mask(valid, p, gen)
        assert not (drop & ~valid).any()  # only valid entries are dropped
        kept = valid & ~drop
        assert (kept.any(1) == valid.any(1)).all()  # no row loses its last valid modality
        # each valid entry drops with p, except that a row losing all gets one back:
        # P(restored) for a row with k valid = p^k, 1 of k entries -> expected share below
        k = valid.sum(1).numpy()
        expect = np.mean(np.repeat(p - p**k / np.maximum(k, 1), k)[: valid.sum()])
        share = drop.sum().item() / valid.sum().item()
        assert share == pytest.approx(expect, abs=4 * np.sqrt(p / valid.sum().item()))
        assert abs(share - p) < p**2 + 0.01
    assert not dropout_mask(valid, 0.0, gen).any()


def test_dropped_rows_are_zeros_others_unchanged():
    x = {m: torch.randn(500, 4) + 3 for m in MODS}
    valid = {m: torch.ones(500, dtype=torch.bool) for m in MODS}
    out, drop = drop_modalities(x, valid, 0.3, torch.Generator().manual_seed(1))
    for j, m in enumerate(MODS):
        assert (out[m][drop[:, j]] == 0).all()
        assert torch.equal(out[m][~drop[:, j]], x[m][~drop[:, j]])
        assert not (x[m] == 0).any()  # the input is not changed in place


def _tiny(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, n)
    feats = {m: (rng.normal(size=(n, 8)) + y[:, None]).astype(np.float32) for m in MODS}
    valid = {m: np.ones(n, bool) for m in MODS}
    labels = [["neutral", "angry", "happy", "sad", "worried", "surprise"][i] for i in y]
    split = np.array(["train"] * 100 + ["test"] * 20, dtype=object)
    return build_dataset([f"c{i}" for i in range(n)], feats, valid, split, labels)


def _params(p):
    return parse_finetune(
        {
            "hidden": 8,
            "d_model": 8,
            "heads": 2,
            "epochs": 2,
            "batch_size": 32,
            "folds": 2,
            "device": "cpu",
            "progress": False,
            "pretrained": False,
            "oversample": False,
            "modality_dropout": p,
        }  # fmt: skip
    )


def test_training_sees_dropped_batches_and_evaluation_never(monkeypatch):
    """p = 0: every training and evaluation batch is the stored features, bit for bit, and
    the dropout draws nothing; p > 0: training batches lose ~p of their entries (zeros),
    evaluation batches none."""
    ds = _tiny()
    seen = {"train": [], "eval": []}
    real_forward = engine.MRCCL.forward

    def spy(self, x, masks=None):
        seen["train" if self.training else "eval"].append({m: v.clone() for m, v in x.items()})
        return real_forward(self, x, masks)

    monkeypatch.setattr(engine.MRCCL, "forward", spy)
    calls = []
    real_drop = engine.drop_modalities
    monkeypatch.setattr(engine, "drop_modalities", lambda *a: calls.append(1) or real_drop(*a))
    lab = ds.labeled()
    folds = make_folds(lab, ds.labels[lab], 2, 0)
    for p in (0.0, 0.4):
        seen = {"train": [], "eval": []}
        calls.clear()
        engine.run_cv("mrccl", ds, folds, _params(p), torch.device("cpu"), {"F": 1.0})
        stored = {m: torch.from_numpy(ds.features[m]) for m in MODS}
        rows_of = {m: {tuple(r.tolist()) for r in stored[m]} for m in MODS}
        assert seen["eval"] and all(
            tuple(r.tolist()) in rows_of[m] for b in seen["eval"] for m in MODS for r in b[m]
        )
        zeros = [(b[m].abs().sum(1) == 0).float() for b in seen["train"] for m in MODS]
        share = torch.cat(zeros).mean().item()
        if p == 0:
            assert share == 0 and not calls
        else:
            assert share == pytest.approx(p, abs=0.06) and calls
            per_row = torch.cat(
                [torch.stack([b[m].abs().sum(1) == 0 for m in MODS], 1) for b in seen["train"]]
            )
            assert not per_row.all(1).any()
