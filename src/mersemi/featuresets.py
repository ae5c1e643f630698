"""Named feature sets: the config's `features:` section, and which set training reads.

    features:
      <set name>:
        modality: visual | acoustic | text   # null or absent: the set's name (visual, ...)
        params: {...}                        # that stage's options; absent: extract.<modality>

Each set is its own branch of the DAG (`FeatureSets`, which the rules read as
`Run.feature_sets`): the stage of its modality per shard, with the set's params as `--params`
(`extract.recipe` filled in unless the set names its own `recipe`), merged into
`features/<set>.h5`. The params are passed through
to the stage's CLI, so a stage's new options work in a set without this module knowing them;
the load checks them with the stage's own declarations. With `features:` absent the sets are
today's three, `visual`, `acoustic` and `text`, each reading its `extract.<modality>` section,
so their paths, commands and params are those of the workflow before sets.

`train.features` names the set that training reads for each modality (default: the set named
after it). An unknown set, or one of another modality, is one line at load.

`feature_benchmark:` (`FeatureBenchmark`, `Run.feature_benchmark`): rule feature_benchmark's
`mersemi train feature-bench` over every set, the combinations listed (default: the sets
`train.features` names) and the `--params` of `train.seeds`, `train.probe`, `train.baseline`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import InputError
from .extract.cli import COMMANDS, stage_module
from .extract.common import stage_section
from .params import like, option, parse_params
from .train.params import BenchParams, job_params, train_seeds

MODALITIES = ("visual", "acoustic", "text")
Modality = Literal["visual", "acoustic", "text"]
# A set name is a folder and file name under results/features/ and logs/ (letters first).
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# The other stages' names: their logs and benchmarks are folders of the same names.
RESERVED = tuple(s for s in COMMANDS if s not in MODALITIES)
# `features:` left out (the schema's default too; tests/test_feature_sets.py keeps them equal).
DEFAULT_SETS = {m: {"modality": m} for m in MODALITIES}


@dataclass
class FeatureSetOptions:
    """One set of the config's `features:` section (its key is the set's name)."""

    modality: Modality | None = option(
        None,
        help="the stage that extracts it: `visual`, `acoustic` or `text`; null: the set's "
        "name, which must then be one of them (a set named after a modality is that modality's)",
    )
    params: dict | None = option(
        None,
        help="the stage's options, as in `extract.<modality>` (every key of that stage's table, "
        "model paths, layers, recipe ...); null: the `extract.<modality>` section itself",
    )


@dataclass
class TrainFeatures:
    """`train.features`: the feature set each modality's training inputs are read from."""

    visual: str = option("visual", help="the visual set that every training step reads")
    acoustic: str = option("acoustic", help="the acoustic set that every training step reads")
    text: str = option("text", help="the text set that every training step reads")


@dataclass(frozen=True)
class FeatureSet:
    name: str
    modality: str
    params: dict  # the stage's `--params` object (`recipe` filled in)


def feature_sets(config: Mapping) -> dict[str, FeatureSet]:
    """The config's feature sets by name, in config order, checked: names, modalities and each
    set's params by its stage's declarations (one InputError line naming the set)."""
    extract = config.get("extract") or {}
    given = config.get("features")
    sets = {}
    for name, entry in (DEFAULT_SETS if given is None else given).items():
        what = f"features.{name}"
        if not isinstance(name, str) or NAME.fullmatch(name) is None:
            raise InputError(
                f"features: set name {name!r} must be letters, digits, _ or -, "
                "starting with a letter"
            )
        if name in RESERVED:
            raise InputError(f"{what}: {name} is a stage's name; name the set otherwise")
        spec = parse_params(FeatureSetOptions, entry, what)
        modality = spec.modality or name
        if modality not in MODALITIES:
            raise InputError(f"{what}: modality is required (one of {list(MODALITIES)})")
        if name in MODALITIES and modality != name:
            raise InputError(
                f"{what}: modality={modality}, but a set named {name} is the {name} modality's"
            )
        section = extract.get(modality) if spec.params is None else spec.params
        params = stage_section({**extract, modality: section}, modality)
        if spec.params is not None:  # extract.<modality> is checked as a section of its own
            parse_params(stage_module(modality).Params, params, f"{what}.params")
        sets[name] = FeatureSet(name, modality, params)
    return sets


def trained_sets(config: Mapping, sets: Mapping[str, FeatureSet]) -> dict[str, str]:
    """`train.features` checked against `sets`: modality -> the name of the set it reads."""
    given = (config.get("train") or {}).get("features")
    chosen = parse_params(TrainFeatures, given, "train.features")
    found = {}
    for modality in MODALITIES:
        name = getattr(chosen, modality)
        if name not in sets:
            raise InputError(
                f"train.features: {modality}={name!r} is not a feature set "
                f"(features: {', '.join(sets) or 'none'})"
            )
        if sets[name].modality != modality:
            raise InputError(
                f"train.features: {modality}={name!r} is a set of modality "
                f"{sets[name].modality}, not {modality}"
            )
        found[modality] = name
    return found


@dataclass
class BenchmarkOptions:
    """The config's `feature_benchmark:` section (rule feature_benchmark)."""

    combos: list | None = option(
        None,
        help="the combinations trained besides every set alone, each a list of 2 or 3 set "
        "names of distinct modalities; null: the three sets `train.features` names; []: none",
    )
    models: list = like(BenchParams, "models")


def benchmark_combos(config: Mapping, sets: Mapping[str, FeatureSet]) -> list[tuple[str, ...]]:
    """`feature_benchmark.combos` checked against `sets` (default: the sets `train.features`
    names), each in modality order (acoustic, visual, text: the table's order)."""
    given = parse_params(BenchmarkOptions, config.get("feature_benchmark"), "feature_benchmark")
    if not given.models:
        raise InputError("feature_benchmark: models is empty (probe, baseline or both)")
    if given.combos is None:
        trained = trained_sets(config, sets)
        given.combos = [[trained[m] for m in MODALITIES]]
    order = ("acoustic", "visual", "text")
    found = []
    for i, combo in enumerate(given.combos):
        what = f"feature_benchmark.combos[{i}]"
        if not isinstance(combo, list | tuple) or not all(isinstance(n, str) for n in combo):
            raise InputError(f"{what}: expected a list of set names, got {combo!r}")
        unknown = [n for n in combo if n not in sets]
        if unknown:
            raise InputError(
                f"{what}: {', '.join(map(repr, unknown))} not a feature set "
                f"(features: {', '.join(sets)})"
            )
        mods = [sets[n].modality for n in combo]
        if not 2 <= len(combo) <= 3 or len(set(mods)) != len(mods):
            raise InputError(f"{what}: needs 2 or 3 sets of distinct modalities, got {mods}")
        names = tuple(sorted(combo, key=lambda n: order.index(sets[n].modality)))
        if names in found:
            raise InputError(f"{what}: {list(combo)} is listed twice")
        found.append(names)
    return found


def check_feature_sets(config: Mapping) -> None:
    """Every set of `features:`, the choice of `train.features` and `feature_benchmark:`
    (configcheck.check_config)."""
    sets = feature_sets(config)
    trained_sets(config, sets)
    benchmark_combos(config, sets)


@dataclass(frozen=True)
class FeatureSets:
    """The feature sets as the rules read them: a set's shards are root/<set>/shard-K.h5
    (its modality's extraction rule, `{set}` wildcard), merged into root/<set>.h5; its model
    check is checks/<modality>.txt for a set named after its modality (today's three), else
    checks/<modality>/<set>.txt (check_models' `{stage}{set_suffix}`: the stage stays the
    wildcard its shell line names)."""

    root: Path  # results/features
    checks: Path  # results/checks
    extract: Mapping  # the config's `extract:` (the other stages' checks)
    sets: Mapping[str, FeatureSet]
    trained: Mapping[str, str]  # modality -> the set training reads (train.features)

    @classmethod
    def of(cls, config: Mapping, results: Path) -> FeatureSets:
        sets = feature_sets(config)
        extract = config.get("extract") or {}
        return cls(results / "features", results / "checks", extract, sets,
                   trained_sets(config, sets))  # fmt: skip

    def names(self, modality: str | None = None) -> list[str]:
        """The sets of `modality` (every set for None), in config order."""
        return [n for n, s in self.sets.items() if modality in (None, s.modality)]

    def wildcard(self, modality: str | None = None) -> str:
        """The `{set}` wildcard's constraint: the sets of `modality` (every set for None). A
        group, never empty: training names a set of each modality (train.features)."""
        return "(?:" + "|".join(map(re.escape, self.names(modality))) + ")"

    def folder(self, name: str) -> Path:
        """A set's per-shard files (and their reasons sidecars)."""
        return self.root / name

    def merged(self, name: str) -> Path:
        return self.root / f"{name}.h5"

    @property
    def trained_files(self) -> dict[str, Path]:
        """The merged files training reads, by modality (acoustic, visual, text)."""
        return {m: self.merged(self.trained[m]) for m in ("acoustic", "visual", "text")}

    def _suffix(self, name: str) -> str:
        return "" if name == self.sets[name].modality else f"/{name}"

    def check(self, wc) -> Path:
        """Input function of an extraction job: its set's model check (check_models)."""
        return self.checks / f"{self.sets[wc.set].modality}{self._suffix(wc.set)}.txt"

    @property
    def check_wildcard(self) -> str:
        """check_models' `{set_suffix}` constraint: empty (a stage, or a set named after its
        modality) or /<set>."""
        suffixes = {"", *(self._suffix(n) for n in self.sets)}
        return "(?:" + "|".join(map(re.escape, sorted(suffixes))) + ")"

    def section(self, name: str) -> dict:
        """A set's `--params` object (`recipe` filled in; the rules pass it as_json)."""
        return self.sets[name].params

    def check_section(self, wc) -> dict:
        """The params a check_models job checks: its set's (`{stage}{set_suffix}` naming a
        set), else the stage's section of `extract:`."""
        if wc.stage in MODALITIES:
            return self.section(wc.set_suffix.removeprefix("/") or wc.stage)
        return stage_section(self.extract, wc.stage)


@dataclass(frozen=True)
class FeatureBenchmark:
    """rule feature_benchmark's `mersemi train feature-bench`: every set (`--set
    NAME=MODALITY:PATH`, its merged file), each combination (`--combo A+B+C`) and `--params`:
    `seeds` (train.seeds), `models`, and the probe's and the baseline's params as the
    workflow's `probe` and `baseline` jobs merge them (train.params.job_params)."""

    sets: tuple[str, ...]  # NAME=MODALITY:PATH
    combos: tuple[str, ...]  # A+B[+C]
    params: dict

    @classmethod
    def of(cls, config: Mapping, feature_sets: FeatureSets) -> FeatureBenchmark:
        fs = feature_sets
        train = config.get("train") or {}
        models = parse_params(BenchmarkOptions, config.get("feature_benchmark")).models
        params = {
            "seeds": train_seeds(train),
            "models": models,
            "probe": job_params(train, "probe"),
            "baseline": job_params(train, "baseline"),
        }
        return cls(
            tuple(f"{n}={fs.sets[n].modality}:{fs.merged(n)}" for n in fs.names()),
            tuple("+".join(c) for c in benchmark_combos(config, fs.sets)),
            params,
        )


__all__ = [
    "DEFAULT_SETS",
    "MODALITIES",
    "BenchmarkOptions",
    "FeatureBenchmark",
    "FeatureSet",
    "FeatureSetOptions",
    "FeatureSets",
    "TrainFeatures",
    "check_feature_sets",
    "feature_sets",
    "trained_sets",
]
