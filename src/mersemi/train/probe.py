"""Linear probe: logistic regression on the standardised concatenated features.

A Table 1 row that says whether the deep model earns its cost: the three modalities'
features are concatenated, z-scored with the training fold's statistics (missing modalities
stay zero vectors, as everywhere), and a multinomial logistic regression (scikit-learn, L2,
`C`) is fitted per fold on the same stratified folds as fine-tuning (same seed, same folds;
no oversampling: a linear model needs no duplicated rows). CV is out of fold; pool and test
rows average the fold models' probabilities, like every other step.
"""

import logging
from dataclasses import asdict

import numpy as np
import pandas as pd

from ..classes import CLASSES
from .data import Dataset
from .folds import stratified_folds
from .io import evaluate, predictions_frame

log = logging.getLogger(__name__)

PROBE = "P"  # the probe's one classifier in predictions frames


def _concat(ds: Dataset, rows: np.ndarray) -> np.ndarray:
    return np.hstack([np.asarray(ds.features[m][rows], dtype=np.float64) for m in sorted(ds.dims)])


def run_probe(ds: Dataset, p) -> tuple[pd.DataFrame, dict]:
    """Out-of-fold and fold-averaged pool predictions of the probe, and its metrics."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    labeled, pool = ds.labeled(), ds.pool(include_test=True)
    y = ds.labels[labeled]
    x_lab, x_pool = _concat(ds, labeled), _concat(ds, pool)
    n_cls = len(CLASSES)
    oof = np.zeros((len(labeled), n_cls))
    oof_fold = np.full(len(labeled), -1)
    pool_p = np.zeros((len(pool), n_cls))
    folds = []
    with threadpool_limits(p.threads if p.threads > 0 else None):
        for k, val in enumerate(stratified_folds(y, p.folds, p.seed)):
            tr = np.setdiff1d(np.arange(len(labeled)), val)
            mu, sd = x_lab[tr].mean(0), x_lab[tr].std(0)
            sd[sd < 1e-8] = 1.0

            def z(x, mu=mu, sd=sd):
                return (x - mu) / sd

            xt = z(x_lab[tr])
            pca = None
            if p.pca:
                pca = PCA(n_components=min(p.pca, *xt.shape), random_state=p.seed).fit(xt)
                xt = pca.transform(xt)

            def proj(x, pca=pca):
                return pca.transform(z(x)) if pca is not None else z(x)

            clf = LogisticRegression(C=p.C, max_iter=p.max_iter, random_state=p.seed)
            clf.fit(xt, y[tr])
            full = np.zeros((len(val), n_cls))
            full[:, clf.classes_] = clf.predict_proba(proj(x_lab[val]))
            oof[val], oof_fold[val] = full, k
            if len(pool):
                pp = np.zeros((len(pool), n_cls))
                pp[:, clf.classes_] = clf.predict_proba(proj(x_pool))
                pool_p += pp / p.folds
            folds.append({"fold": k, "train": int(len(tr)), "val": int(len(val))})
    rows = np.concatenate([labeled, pool])
    probs = {PROBE: np.concatenate([oof, pool_p])}
    fold = np.concatenate([oof_fold, np.full(len(pool), -1)])
    n_valid = sum(ds.valid[m][rows].astype(int) for m in ds.valid)
    df = predictions_frame(
        ds.names[rows], ds.split[rows], ds.labels[rows], fold, probs, {PROBE: 1.0}, n_valid
    )
    metrics = {"kind": "probe", "params": asdict(p), **evaluate(df), "folds": folds}
    log.info(
        "linear probe: CV WAF %.4f%s",
        metrics["cv"]["waf"],
        f", test WAF {metrics['test']['waf']:.4f}" if metrics.get("test") else "",
    )
    return df, metrics
