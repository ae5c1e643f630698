"""Feature benchmark: which feature set of each modality to train on, cheaply, before MR-CCL.

For every named feature set (one merged HDF5 file of one modality) the linear probe and the
MER2024 attention baseline are run unimodally (the baseline with a one-modality dims dict:
one MLP encoder, its attention a single unnormalised weight), and for every combination the
user lists (one set per modality) both run on the sets together. Each runs once per seed on
that seed's folds, the folds of the workflow's own probe and baseline jobs (same seed, same
stratified folds over the labeled rows, the rows in the order of the first acoustic set's
file, which is the workflow's order). A row reports CV WAF mean ± std (ddof 1) over the seeds
and the per-seed values; rows are ranked by CV WAF within their modality (combinations last).
A set whose file stores every layer (`layers: all`) also gets one row per layer,
`<set>@L<k>` (hidden state k pooled alone), beside its own row (the family's default choice).
"""

import json
import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from ..manifest import read_manifest
from ..params import parse_params as _parse
from ..store import MODALITIES, read_features, read_layers, stored_layers
from .data import Dataset, build_dataset
from .params import BaselineParams, BenchParams, ProbeParams
from .pipeline import run_baseline
from .probe import run_probe

log = logging.getLogger(__name__)

COMBO = "+"  # joins the sets of a combination, and their modalities
LAYER = "@L"  # <set>@L<k>: hidden state k of a set stored with `layers: all`


@dataclass(frozen=True)
class FeatureSet:
    name: str
    modality: str
    path: str
    layer: int | None = None  # one stored layer of the file instead of its features


def expand_layers(sets: list[FeatureSet]) -> list[FeatureSet]:
    """Each set, followed by one set per layer its file stores (`<set>@L<k>`)."""
    out = []
    for s in sets:
        out.append(s)
        n = stored_layers(s.path) if s.layer is None else 0
        out += [FeatureSet(f"{s.name}{LAYER}{k}", s.modality, s.path, k) for k in range(n)]
    return out


def parse_bench_params(text) -> BenchParams:
    p = _parse(BenchParams, text, "--params")
    if not p.seeds:
        raise InputError("--params: seeds is empty (give at least one seed)")
    if not p.models:
        raise InputError("--params: models is empty (probe, baseline or both)")
    # Checked once here, so a bad job value stops the run before any training.
    for s in p.seeds:
        job(p, "probe", s)
        job(p, "baseline", s)
    return p


def job(p: BenchParams, model: str, seed: int):
    """The probe's or the baseline's params for one seed (the seed overrides the section's)."""
    cls = ProbeParams if model == "probe" else BaselineParams
    return _parse(cls, {**getattr(p, model), "seed": seed}, f"--params {model}")


def parse_set(spec: str) -> FeatureSet:
    """NAME=MODALITY:PATH."""
    name, sep, rest = spec.partition("=")
    modality, sep2, path = rest.partition(":")
    if not (sep and sep2 and name and path) or COMBO in name or LAYER in name:
        raise InputError(
            f"--set {spec!r}: expected NAME=MODALITY:PATH (NAME without {COMBO!r} or {LAYER!r})"
        )
    if modality not in MODALITIES:
        raise InputError(f"--set {name}: unknown modality {modality!r}; one of {list(MODALITIES)}")
    return FeatureSet(name, modality, path)


def parse_combo(spec: str, sets: dict[str, FeatureSet]) -> tuple[str, ...]:
    """NAME+NAME[+NAME]: sets of distinct modalities, returned in modality order."""
    names = spec.split(COMBO)
    unknown = [n for n in names if n not in sets]
    if unknown:
        raise InputError(f"--combo {spec!r}: unknown set(s) {unknown}; sets: {sorted(sets)}")
    mods = [sets[n].modality for n in names]
    if len(names) < 2 or len(set(mods)) != len(mods):
        raise InputError(f"--combo {spec!r}: needs 2 or 3 sets of distinct modalities, got {mods}")
    return tuple(sorted(names, key=lambda n: MODALITIES.index(sets[n].modality)))


def check_names(sets: list[FeatureSet]) -> dict[str, FeatureSet]:
    by_name = {s.name: s for s in sets}
    if len(by_name) != len(sets):
        names = [s.name for s in sets]
        raise InputError(
            f"--set: name(s) given twice: {sorted({n for n in names if names.count(n) > 1})}"
        )
    return by_name


class Sets:
    """The sets' files, each checked against the manifest and kept only for the labeled clips
    (the labeled training rows and labeled test rows: the pool's predictions are not scored,
    and no fold's training depends on them), aligned to one row order: the first acoustic
    set's (the workflow's order), else the first set's."""

    def __init__(self, sets: list[FeatureSet], manifest):
        self.sets = check_names(sets)
        man = read_manifest(manifest).set_index("name")
        first = next((s for s in sets if s.modality == "acoustic"), sets[0])
        self.meta_of, self._rows = {}, {}
        self.names = None
        for s in [first, *(t for t in sets if t is not first)]:
            fs = read_features(s.path, modality=s.modality)
            got = set(fs.names)
            missing, extra = sorted(set(man.index) - got), sorted(got - set(man.index))
            if missing or extra:
                raise InputError(
                    f"--set {s.name} ({s.path}): {len(missing)} manifest clip(s) without "
                    f"features {missing[:5]}, {len(extra)} feature row(s) not in the manifest "
                    f"{extra[:5]}"
                )
            if self.names is None:
                order = np.asarray(fs.names, dtype=object)
                self.names = order[man.loc[list(order), "label"].to_numpy() != ""]
            index = {n: i for i, n in enumerate(fs.names)}
            at = np.fromiter((index[n] for n in self.names), np.int64, len(self.names))
            x = fs.features if s.layer is None else read_layers(s.path, s.layer)
            self._rows[s.name] = (x[at], fs.valid[at])
            self.meta_of[s.name] = fs.meta
            del fs
        rows = man.loc[list(self.names)]
        self.split, self.labels = rows["split"].to_numpy(), rows["label"].to_numpy()

    def dataset(self, names: tuple[str, ...]) -> Dataset:
        mods = {self.sets[n].modality: n for n in names}
        feats = {m: self._rows[n][0] for m, n in mods.items()}
        valid = {m: self._rows[n][1] for m, n in mods.items()}
        return build_dataset(self.names, feats, valid, self.split, self.labels)

    def meta(self, name: str) -> dict:
        m = self.meta_of[name]
        return {
            "modality": m.modality,
            "path": self.sets[name].path,
            "model": m.model,
            "layers": m.layers,
            "pooling": m.pooling,
            "dim": m.dim,
            **({} if self.sets[name].layer is None else {"layer": self.sets[name].layer}),
        }


def _waf(metrics: dict, part: str) -> float | None:
    return None if not metrics.get(part) else 100 * metrics[part]["waf"]


def _mean_std(vals: list) -> tuple[float | None, float | None]:
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None
    return float(np.mean(vals)), (float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)


def run_one(ds: Dataset, model: str, params) -> dict:
    """One model, one seed: its metrics (the probe's or the baseline's own)."""
    if model == "probe":
        return run_probe(ds, params)[1]
    return run_baseline(ds, params)[2]


def bench_row(sets: Sets, names: tuple[str, ...], model: str, p: BenchParams) -> dict:
    ds = sets.dataset(names)
    cv, test = [], []
    for seed in p.seeds:
        m = run_one(ds, model, job(p, model, seed))
        cv.append(_waf(m, "cv"))
        test.append(_waf(m, "test"))
        log.info("%s %s seed %d: CV WAF %.2f", COMBO.join(names), model, seed, cv[-1])
    cv_mean, cv_std = _mean_std(cv)
    test_mean, test_std = _mean_std(test)
    mods = [sets.sets[n].modality for n in names]
    return {
        "sets": COMBO.join(names),
        "modality": COMBO.join(mods),
        "model": model,
        "dims": COMBO.join(str(ds.dims[m]) for m in mods),
        "cv_waf": cv_mean,
        "cv_waf_std": cv_std,
        "cv_waf_seeds": cv,
        "test_waf": test_mean,
        "test_waf_std": test_std,
        "seeds": len(p.seeds),
    }


def rank(rows: list[dict]) -> pd.DataFrame:
    """Unimodal rows by modality (acoustic, visual, text), then combinations; within each
    group by CV WAF, best first; `rank` counts within the group."""
    df = pd.DataFrame(rows)
    order = {m: i for i, m in enumerate(MODALITIES)}
    df["_group"] = df["modality"].map(lambda m: order.get(m, len(order)))
    df = df.sort_values(["_group", "cv_waf"], ascending=[True, False], kind="stable")
    df.insert(0, "rank", df.groupby("_group").cumcount() + 1)
    return df.drop(columns="_group").reset_index(drop=True)


def feature_bench(
    sets: list[FeatureSet], combos: list[str], manifest, p: BenchParams
) -> tuple[pd.DataFrame, dict]:
    """The ranked table and the JSON document (rows, sets' provenance, params)."""
    sets = expand_layers(sets)
    entries = [(s.name,) for s in sets] + [parse_combo(c, check_names(sets)) for c in combos]
    store = Sets(sets, manifest)
    rows = [bench_row(store, names, model, p) for names in entries for model in p.models]
    df = rank(rows)
    doc = {
        "kind": "feature-bench",
        "params": asdict(p),
        "sets": {s.name: store.meta(s.name) for s in sets},
        "rows": json.loads(df.to_json(orient="records")),  # NaN (no test labels): null
    }
    return df, doc


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The table as CSV: per-seed values joined by ';'."""
    out = df.copy()
    out["cv_waf_seeds"] = [
        ";".join("" if v is None else f"{v:.4f}" for v in vals) for vals in df["cv_waf_seeds"]
    ]
    return out


def markdown(df: pd.DataFrame) -> str:
    def pm(v, sd, n):
        if v is None or pd.isna(v):
            return "–"
        return f"{v:.2f} ± {sd:.2f}" if n > 1 else f"{v:.2f}"

    lines = [
        "| Rank | Set(s) | Modality | Model | Dims | CV WAF (%) | Test WAF (%) | Seeds |",
        "|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for r in df.itertuples(index=False):
        lines.append(
            f"| {r.rank} | {r.sets} | {r.modality} | {r.model} | {r.dims} "
            f"| {pm(r.cv_waf, r.cv_waf_std, r.seeds)} | {pm(r.test_waf, r.test_waf_std, r.seeds)}"
            f" | {r.seeds} |"
        )
    return "\n".join(lines) + "\n"
