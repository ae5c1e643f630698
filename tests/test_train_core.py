"""Pure cores of mersemi.train: losses, NEE, oversampling, folds, vote, pseudo labels, params."""

import math

import numpy as np
import pytest
import torch

from mersemi.classes import CLASS_INDEX
from mersemi.errors import InputError
from mersemi.train.folds import make_folds
from mersemi.train.losses import Temperature, imcl_ae, imcl_ne, info_nce
from mersemi.train.nee import add_noise, alpha_bar, sample_steps
from mersemi.train.oversample import oversample
from mersemi.train.params import FinetuneParams, PseudoParams, parse_params
from mersemi.train.selftrain import audit, select_pseudo
from mersemi.train.vote import soft_vote


def _ce(logits_row, target):
    return -logits_row[target] + math.log(sum(math.exp(v) for v in logits_row))


def _hand_info_nce(a, b, tau):
    a = [np.asarray(v) / np.linalg.norm(v) for v in a]
    b = [np.asarray(v) / np.linalg.norm(v) for v in b]
    s = [[float(x @ y) / tau for y in b] for x in a]
    n = len(a)
    rows = sum(_ce(s[i], i) for i in range(n)) / n
    cols = sum(_ce([s[j][i] for j in range(n)], i) for i in range(n)) / n
    return 0.5 * (rows + cols)


A = [[1.0, 0.0], [0.6, 0.8], [-1.0, 1.0]]
B = [[0.8, 0.6], [0.0, 2.0], [-1.0, -0.5]]


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_info_nce_matches_hand_computation(tau):
    got = info_nce(torch.tensor(A), torch.tensor(B), tau).item()
    assert got == pytest.approx(_hand_info_nce(A, B, tau), rel=1e-5)


def test_info_nce_symmetric_and_temperature_once():
    a, b = torch.tensor(A), torch.tensor(B)
    assert info_nce(a, b, 0.3).item() == pytest.approx(info_nce(b, a, 0.3).item(), rel=1e-6)
    # The temperature is applied once: tau=0.5 equals scaling cosines by 2 at tau=1.
    assert info_nce(a, b, 0.5).item() == pytest.approx(_hand_info_nce(A, B, 0.5), rel=1e-5)
    assert info_nce(a, b, 0.5).item() != pytest.approx(_hand_info_nce(A, B, 0.25), rel=1e-3)
    # Positives are the other view's row i, not self-similarity: swapping B's rows hurts.
    perm = torch.tensor(B)[[1, 2, 0]]
    assert info_nce(a, perm, 0.1).item() > info_nce(a, a, 0.1).item()
    # Identical orthogonal views at a low temperature: near-zero loss.
    eye = torch.eye(3)
    assert info_nce(eye, eye, 0.01).item() < 1e-6


def test_learnable_temperature():
    t = Temperature(0.1)
    assert t().item() == pytest.approx(0.1, rel=1e-6)
    assert any(p.requires_grad for p in t.parameters())
    with torch.no_grad():
        t.log_tau.fill_(math.log(1e-6))
    assert t().item() == pytest.approx(0.01)  # clamped


def test_imcl_ne_and_ae_are_means_of_their_terms():
    g = torch.Generator().manual_seed(0)
    clean = [torch.randn(4, 3, generator=g) for _ in range(3)]
    noisy = [torch.randn(4, 3, generator=g) for _ in range(3)]
    want = sum(info_nce(c, n, 0.2) for c, n in zip(clean, noisy, strict=True)) / 3
    assert imcl_ne(clean, noisy, 0.2).item() == pytest.approx(want.item(), rel=1e-6)

    inv = clean
    proj = [torch.nn.Linear(3, 6) for _ in range(3)]
    terms = [
        info_nce(inv[0], inv[1], 0.2),
        info_nce(inv[0], inv[2], 0.2),
        info_nce(inv[1], inv[2], 0.2),
    ]
    terms += [
        info_nce(proj[0](inv[0]), torch.cat([inv[1], inv[2]], -1), 0.2),
        info_nce(proj[1](inv[1]), torch.cat([inv[0], inv[2]], -1), 0.2),
        info_nce(proj[2](inv[2]), torch.cat([inv[0], inv[1]], -1), 0.2),
    ]
    assert imcl_ae(inv, proj, 0.2).item() == pytest.approx(sum(terms).item() / 6, rel=1e-6)


def test_alpha_bar_schedule():
    ab = alpha_bar(100, 0.001, 0.1)
    betas = np.linspace(0.001, 0.1, 100)
    assert len(ab) == 100
    assert ab[0].item() == pytest.approx(0.999)
    assert ab[49].item() == pytest.approx(np.prod(1 - betas[:50]), rel=1e-5)
    assert ab[-1].item() == pytest.approx(np.prod(1 - betas), rel=1e-5)
    assert torch.all(ab[1:] < ab[:-1])


@pytest.mark.parametrize("t", [1, 20, 100])
def test_nee_statistics_at_given_t(t):
    ab = alpha_bar()
    x = torch.full((20000, 4), 2.0)
    torch.manual_seed(0)
    n = add_noise(x, torch.full((20000,), t), ab)
    a = ab[t - 1].item()
    assert n.mean().item() == pytest.approx(2.0 * math.sqrt(a), abs=0.02)
    assert n.var().item() == pytest.approx(1.0 - a, rel=0.05, abs=1e-3)


def test_nee_per_sample_t_vectorised():
    ab = alpha_bar()
    x = torch.ones(3, 5)
    eps = torch.ones(3, 5)
    t = torch.tensor([1, 50, 100])
    n = add_noise(x, t, ab, noise=eps)
    want = (ab[t - 1].sqrt() + (1 - ab[t - 1]).sqrt()).unsqueeze(1).expand(3, 5)
    assert torch.allclose(n, want)
    s = sample_steps(10000, 100, torch.Generator().manual_seed(0))
    assert s.min().item() == 1 and s.max().item() == 100


def test_oversample_counts():
    idx = np.arange(100, 130)
    y = np.array([0] * 15 + [3] * 10 + [5] * 5)
    out = oversample(idx, y, {3: 12, 5: 9, 0: 10}, np.random.default_rng(0))
    label = dict(zip(idx.tolist(), y.tolist(), strict=True))
    counts = np.bincount([label[i] for i in out], minlength=6)
    assert counts.tolist() == [15, 0, 0, 12, 0, 9]  # class 0 already above its target
    assert set(out.tolist()) == set(idx.tolist())  # only rows of the input are duplicated
    again = oversample(idx, y, {3: 12, 5: 9}, np.random.default_rng(0))
    assert np.array_equal(out, again)


def test_folds_never_leak_duplicates_or_pseudo_labels_into_validation():
    rng = np.random.default_rng(0)
    labeled = np.arange(200)
    y = rng.choice(6, size=200, p=[0.3, 0.25, 0.2, 0.12, 0.1, 0.03])
    pseudo = np.arange(500, 540)
    py = rng.integers(0, 6, 40)
    targets = {3: 60, 4: 60, 5: 60}
    folds = make_folds(labeled, y, 5, 0, targets, pseudo, py)
    vals = np.concatenate([f.val for f in folds])
    assert sorted(vals.tolist()) == labeled.tolist()  # folds partition the labeled set
    for f in folds:
        assert not set(f.train.tolist()) & set(f.val.tolist())
        assert not set(pseudo.tolist()) & set(f.val.tolist())
        assert set(pseudo.tolist()) <= set(f.train.tolist())
        counts = np.bincount(f.train_labels, minlength=6)
        for c, t in targets.items():
            assert counts[c] == max(t, counts[c]) and counts[c] >= t
        # labels stay attached to their rows through the duplication
        truth = {
            **dict(zip(labeled.tolist(), y.tolist(), strict=True)),
            **dict(zip(pseudo.tolist(), py.tolist(), strict=True)),
        }
        assert all(
            truth[r] == lab
            for r, lab in zip(f.train.tolist(), f.train_labels.tolist(), strict=True)
        )
    with pytest.raises(ValueError):
        make_folds(labeled, y, 5, 0, None, np.array([3]), np.array([0]))


def test_soft_vote_hand_computed():
    probs = {
        "A": np.array([[0.9, 0.1], [0.2, 0.8]]),
        "V": np.array([[0.3, 0.7], [0.6, 0.4]]),
        "T": np.array([[0.5, 0.5], [0.5, 0.5]]),
        "F": np.array([[0.4, 0.6], [0.1, 0.9]]),
    }
    w = {"A": 0.7, "V": 0.5, "T": 0.4, "F": 0.7}
    got = soft_vote(probs, w)
    want0 = (0.7 * 0.9 + 0.5 * 0.3 + 0.4 * 0.5 + 0.7 * 0.4) / 2.3
    assert got[0, 0] == pytest.approx(want0)
    assert np.allclose(got.sum(1), 1.0)
    assert soft_vote(probs, {"V": 1.0}).argmax(1).tolist() == [1, 0]
    with pytest.raises(KeyError):
        soft_vote(probs, {"X": 1.0})


def test_select_pseudo_agreement_and_class_thresholds():
    pm = np.array(
        [
            [0.995, 0.001, 0.001, 0.001, 0.001, 0.001],  # neutral, confident
            [0.98, 0.004, 0.004, 0.004, 0.004, 0.004],  # neutral, below 0.99
            [0.02, 0.02, 0.02, 0.02, 0.9, 0.02],  # worried 0.9 >= 0.85
            [0.02, 0.02, 0.02, 0.02, 0.9, 0.02],  # baseline disagrees
        ]
    )
    pb = pm.copy()
    pb[3] = [0.9, 0.02, 0.02, 0.02, 0.02, 0.02]
    pb[2, 4], pb[2, 0] = 0.8, 0.12  # baseline's confidence 0.8 < 0.85
    thr = np.array([0.99, 0.99, 0.99, 0.99, 0.85, 0.85])
    keep, pred = select_pseudo(pm, pb, thr, "both")
    assert keep.tolist() == [True, False, False, False]
    keep, _ = select_pseudo(pm, pb, thr, "mrccl")
    assert keep.tolist() == [True, False, True, False]
    keep, _ = select_pseudo(pm, pb, thr, "mean")
    assert keep.tolist() == [True, False, True, False]  # (0.9 + 0.8) / 2 = 0.85
    rep = audit(pm, pb, thr, "mrccl", [0.5, 0.95], truth=np.array([0, 0, 3, -1]))
    assert rep["agreement_rate"] == 0.75
    assert rep["selected"]["count"] == 2 and rep["selected"]["precision"] == 0.5
    assert rep["selected"]["per_class"]["worried"] == 1
    assert [s["count"] for s in rep["sweep"]] == [3, 2]  # agreeing rows 0-2 at 0.5; 0, 1 at 0.95


def test_params_reject_unknown_and_mistyped_keys():
    with pytest.raises(InputError, match="lerning_rate"):
        parse_params(FinetuneParams, '{"lerning_rate": 0.1}')
    with pytest.raises(InputError, match="epochs"):
        parse_params(FinetuneParams, '{"epochs": "ten"}')
    with pytest.raises(InputError, match="device"):
        parse_params(FinetuneParams, '{"device": "tpu"}')
    with pytest.raises(InputError, match="weights"):
        parse_params(FinetuneParams, '{"weights": {"Q": 1}}')
    p = parse_params(FinetuneParams, '{"lr": 1, "nee": false}', base={"step": 2})
    assert p.lr == 1 and p.nee is False and p.step == 2 and p.weights["A"] == 0.7
    q = parse_params(PseudoParams, '{"thresholds": {"sad": 0.5}}')
    assert q.thresholds["sad"] == 0.5 and q.thresholds["worried"] == 0.85
    assert CLASS_INDEX["sad"] == 3


def test_oversample_scope_dataset_keeps_the_papers_ratio():
    """Targets over the whole labeled set ("dataset") scale to each training fold's share, so
    a minority class is duplicated by the same factor as in the paper; "fold" applies them
    to every fold as given."""
    y = np.array([0] * 400 + [5] * 100)
    labeled = np.arange(len(y))
    per_scope = {}
    for scope in ("dataset", "fold"):
        folds = make_folds(labeled, y, 5, 0, {5: 450}, scope=scope)
        per_scope[scope] = [int((f.train_labels == 5).sum()) for f in folds]
    assert per_scope["dataset"] == [360] * 5  # 450 * 400/500: 4.5x of the 80 in each fold
    assert per_scope["fold"] == [450] * 5  # 5.6x
    with pytest.raises(ValueError):
        make_folds(labeled, y, 5, 0, {5: 450}, scope="everything")


def test_confidence_scores_logit_sum_and_calibration():
    from mersemi.train.selftrain import calibrate, fit_temperature, logit_sum

    p = {"A": np.array([[0.7, 0.3]]), "F": np.array([[0.8, 0.2]])}
    w = {"A": 0.7, "F": 0.7}
    # softmax(0.7 log pA + 0.7 log pF), by hand; sharper than either head's probability.
    z = 0.7 * np.log([0.7, 0.3]) + 0.7 * np.log([0.8, 0.2])
    assert logit_sum(p, w)[0] == pytest.approx(np.exp(z) / np.exp(z).sum())
    assert logit_sum(p, w)[0, 0] > 0.8
    # An under-confident model (right 95 % of the time at p=0.6) is sharpened: T < 1.
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    pred = np.where(rng.random(2000) < 0.95, y, 1 - y)
    probs = np.where(pred[:, None] == np.arange(2), 0.6, 0.4)
    t = fit_temperature(probs, y)
    assert t < 1
    assert calibrate(probs, t).max(1).mean() == pytest.approx(0.95, abs=0.01)


def test_fitted_vote_weights_nested_over_folds():
    from mersemi.train.vote import fit_weights, nested_fit

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    good = np.full((600, 3), 0.1)
    good[np.arange(600), y] = 0.8
    noise = rng.dirichlet(np.ones(3), 600)
    w = fit_weights({"A": noise, "F": good}, y)
    assert w["F"] > 0.9 and sum(w.values()) == pytest.approx(1, abs=1e-3)
    fold = np.arange(600) % 3
    voted, per_fold, w_all = nested_fit({"A": noise, "F": good}, y, fold)
    assert set(per_fold) == {0, 1, 2} and voted.shape == (600, 3)
    # Fold 0's rows are voted with weights that never saw them.
    assert np.allclose(
        voted[fold == 0],
        soft_vote({"A": noise[fold == 0], "F": good[fold == 0]}, per_fold[0]),
    )
    assert per_fold[0] == fit_weights({"A": noise[fold != 0], "F": good[fold != 0]}, y[fold != 0])


def test_baseline_encoder_is_mertools_mlpencoder():
    """MERTools' MLPEncoder: dropout once on the input, then three Linear-ReLU layers (no
    dropout between them). With p=1 the input is dropped entirely, so the output is the
    encoder of a zero input, not zero; in eval mode dropout is off."""
    from mersemi.train.models import MLPEncoder

    torch.manual_seed(0)
    enc = MLPEncoder(5, 16, dropout=1.0).train()
    x = torch.randn(4, 5)
    assert torch.equal(enc(x), enc.net(torch.zeros(4, 5)))
    assert enc(x).abs().sum() > 0
    assert sum(isinstance(m, torch.nn.Dropout) for m in enc.modules()) == 1
    assert sum(isinstance(m, torch.nn.Linear) for m in enc.modules()) == 3
    assert torch.equal(enc.eval()(x), enc.net(x))


def test_clip_without_valid_modality_is_never_a_pseudo_label():
    """Both models sure of the same class is not evidence when the clip had no valid feature:
    the clip is excluded (and counted) whatever its confidence."""
    from mersemi.classes import CLASSES
    from mersemi.train.io import predictions_frame
    from mersemi.train.pipeline import run_pseudo

    n = 4
    probs = np.full((n, 6), 0.01)
    probs[:, 0] = 0.95
    frame = predictions_frame(
        [f"u{i}" for i in range(n)], ["unlabeled"] * n, np.full(n, -1), np.full(n, -1),
        {"F": probs}, {"F": 1.0}, n_valid=np.array([3, 0, 2, 1]),
    )  # fmt: skip
    p = parse_params(PseudoParams, {"score": "prob_vote", "weights": {"F": 1.0}})
    p.thresholds = dict.fromkeys(CLASSES, 0.5)
    labels, report = run_pseudo(frame, frame, p)
    assert list(labels["name"]) == ["u0", "u2", "u3"]
    assert report["excluded_no_valid_modality"] == 1 and report["pool"] == 3
