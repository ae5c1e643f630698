"""The workflow's load, and the one module of the package that `Snakefile` and
`workflow/rules/*.smk` import (tests/test_smk_imports.py reads them; import-linter cannot).

`prepare_config` types the `--config` overrides and checks the config's shape (the Snakefile,
before Snakemake's `validate` fills in the defaults). `load_run` then does, in order, what
loading the workflow does before any rule is defined: every options section checked, the
results folder's lock claimed and the folder checked writable (main process), the demo inputs
generated (`data.demo`), the inventory updated from the video folders (main process; cluster
jobs read it as the main process left it), and the labels checked against the folds they must
fill. A user error stops the load with one line and the CLI's exit code
(errors.report_error: bad input 2, a full disk 3, a read-only or forbidden folder 4).

`Chains` holds the training chains' paths and the train rules' `{seed}` wildcard, and builds
the fine-tuning steps' inputs. `Run.feature_sets` (mersemi.featuresets.FeatureSets) holds the
feature sets' paths, `{set}` wildcards and params (the config's `features:`, `train.features`);
`Run.feature_benchmark` the feature benchmark's command line (`feature_benchmark:`);
`Run.baseline_search` the baseline search's trials and seeds (`baseline_search:`).
The other names are what the rules format into their paths and `--params` (the shard file stem,
code digests, stage and variant names, the options).
(Snakemake's linter wants no function beside rules, so the rule files' helpers live here or in
common.smk.)
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .clips import SHARD_STEM, Columns
from .codedigest import code_digest
from .configcheck import check_config, check_schema, typed_overrides
from .errors import InputError, one_line, report_error
from .extract.cli import STAGES
from .extract.common import stage_section
from .featuresets import FeatureBenchmark, FeatureSets
from .inventory import Inventory, read_inventory, update_inventory
from .manifest import label_clips
from .runlock import ResultsLock, check_writable, claim
from .train.folds import check_folds
from .train.params import VARIANTS, config_folds, job_params, parse_job, train_seeds
from .train.search import SearchPlan

# What the rule files may import from the package (tests/test_smk_imports.py holds them to it).
__all__ = [
    "SEED",
    "SHARD_STEM",
    "STAGES",
    "VARIANTS",
    "as_json",
    "code_digest",
    "finetune_flags",
    "load_run",
    "prepare_config",
    "stage_section",
    "train_params",
]

PROG = "mersemi"


def fail(message: str, code: int = 2):
    """Stop loading with one line on the terminal (no traceback) and the CLI's exit code."""
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)
    sys.exit(code)


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Bad input, a full disk or a read-only folder inside the block: one line and exit 2, 3
    or 4, as the CLI (errors.report_error); any other error keeps its traceback."""
    try:
        yield
    except (InputError, OSError) as e:
        code = report_error(e, PROG)
        if code is None:
            raise
        sys.exit(code)


def prepare_config(config: dict, overrides: Mapping) -> None:
    """`--config` values typed as a config file types them (Snakemake leaves nested ones
    strings), then the schema: a violation is one line (key path, value, rule) and exit 2. The
    schema ships in the package (mersemi.checkmodels validates with the same file)."""
    with exit_on_user_error():
        typed_overrides(config, overrides)
        check_schema(config)


@dataclass(frozen=True)
class Run:
    """What the rules read of a loaded workflow."""

    results: Path
    inventory_dir: Path  # results/inventory
    inventory: Inventory
    shards: list[str]  # the inventory's live shards, as file ids
    # The main process's hold on the results folder (mersemi.runlock); None in cluster jobs.
    lock: ResultsLock | None
    # Where a load beside a running workflow wrote the inventory files that changed (else
    # None), and those files, relative to it.
    stage_dir: Path | None
    staged: frozenset[str]
    chains: Chains  # results/train, one chain per seed of train.seeds
    feature_sets: FeatureSets  # results/features, one branch per set of `features:`
    # rule feature_benchmark's sets, combinations and --params (`feature_benchmark:`)
    feature_benchmark: FeatureBenchmark
    # search.smk's trials, best-setting seeds and --search (`baseline_search:`)
    baseline_search: SearchPlan

    def inventory_file(self, name: str) -> Path:
        """An inventory file as the rules read it: the staged copy where this load staged one."""
        return (self.stage_dir if name in self.staged else self.inventory_dir) / name

    def check_start(self) -> None:
        """At the workflow's start (onstart): a results folder another workflow holds refuses
        the run, one line and exit 4 (a dry run plans on the staged inventory)."""
        if self.lock is not None and not self.lock.held:
            fail(self.lock.refusal(), 4)


def load_run(config: dict, main_process: bool) -> Run:
    """Load the workflow on `config` (validated, defaults filled in): see the module's doc.
    `main_process`: Snakemake's main process, not a cluster job's."""
    with exit_on_user_error():
        # Every options section (extraction and training) before anything is read or written.
        check_config(config)
        results = Path(config["results"])
        inventory_dir = results / "inventory"
        lock = _claim(results) if main_process else None
        stage_dir = None
        if lock is not None and not lock.held:
            stage_dir = Path(tempfile.mkdtemp(prefix="mersemi-staged-inventory-"))
            atexit.register(shutil.rmtree, stage_dir, True)
        with _load_messages():
            inventory = _load_inventory(config, inventory_dir, stage_dir, main_process)
        if main_process:
            _check_labels(config, inventory)
    staged = (
        frozenset()
        if stage_dir is None
        else frozenset(
            p.relative_to(stage_dir).as_posix() for p in stage_dir.rglob("*") if p.is_file()
        )
    )
    feature_sets = FeatureSets.of(config, results)
    return Run(
        results=results,
        inventory_dir=inventory_dir,
        inventory=inventory,
        shards=inventory.shards,
        lock=lock,
        stage_dir=stage_dir,
        staged=staged,
        chains=Chains.of(results / "train", config["train"]),
        feature_sets=feature_sets,
        feature_benchmark=FeatureBenchmark.of(config, feature_sets),
        baseline_search=SearchPlan.of(config),
    )


@contextlib.contextmanager
def _load_messages() -> Iterator[None]:
    """The inventory's and the clip listing's INFO lines on the terminal during the load only:
    the handler and the levels are put back after it, so a process that loads more than once (a
    test session) neither repeats lines nor keeps writing to a stream that has closed."""
    handler = logging.StreamHandler()
    loggers = [logging.getLogger(name) for name in ("mersemi.inventory", "mersemi.clips")]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.INFO)
        log.addHandler(handler)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels, strict=True):
            log.removeHandler(handler)
            log.setLevel(level)


def _claim(results: Path) -> ResultsLock:
    """The results folder's lock, taken before the load writes there. Taken by another
    workflow: this load writes nothing that workflow reads (a dry run plans on a staged
    inventory) and a run is refused at its start (Run.check_start)."""
    lock = claim(results)
    if lock.held:
        check_writable(results)
    else:
        print(
            f"{PROG}: note: {lock.refusal()}; this load writes nothing there, a dry run "
            "plans on a staged copy of the inventory",
            file=sys.stderr,
        )
    return lock


def _load_inventory(
    config: dict, inventory_dir: Path, stage_dir: Path | None, main_process: bool
) -> Inventory:
    """Update the inventory from the video folders (main process only, writing just the files
    whose content changed), or read it as the main process left it (cluster jobs, which must
    not see the folders change under a running workflow)."""
    if not main_process:
        inventory = read_inventory(inventory_dir)
        if inventory is None:
            raise InputError(
                f"{inventory_dir}: no inventory (start the workflow from the main process)"
            )
        return inventory
    data = config["data"]
    if data["demo"]:
        from .demo.videos import ensure_demo

        ensure_demo(Path(data["label_csv"]).parent, data["demo_seed"])
    folders = {
        "labeled": data["labeled_dir"],
        "unlabeled": data["unlabeled_dir"],
        "test": data["test_dir"],
    }
    columns = Columns(name=data["columns"]["name"], text=data["columns"]["text"])
    return update_inventory(
        inventory_dir,
        folders,
        config["shards"],
        data["transcript_csv"],
        columns,
        stage_dir=stage_dir,
    )


def _check_labels(config: dict, inventory: Inventory) -> None:
    """The labels, and the folds they must fill, at load (main process): a bad row or too few
    clips of a class for the folds stops the run here, not after the extraction. (The test
    labels, which only score, are checked by the manifest job.)"""
    data = config["data"]
    manifest = label_clips(inventory.clips, data["label_csv"], None, Columns(**data["columns"]))
    labels = manifest.loc[manifest["split"] == "train", "label"]
    for what, n_folds in config_folds(config["train"]).items():
        check_folds(labels, n_folds, f"label CSV {data['label_csv']}: {what}")


def as_json(section: Mapping) -> str:
    """A config section as a compact JSON string for `--params` (quote with {params.x:q})."""
    return json.dumps(section, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Options that shape the DAG (Chains), not what the job computes: left out of its `--params`,
# so that trying pseudo.rounds: 2 on a finished run adds round 2 instead of redoing round 1 and
# every step 2 (the finetune jobs get min_new as their own --min-new).
DAG_ONLY = {"pseudo": ("rounds", "min_new")}


def train_params(train: dict, job: str, **kw) -> str:
    """A train job's `--params` JSON (train.params.job_params: the one merge of the config's
    sections, the fine-tuning step, a variant's overrides), less its DAG_ONLY keys."""
    params = job_params(train, job, **kw)
    return as_json({k: v for k, v in params.items() if k not in DAG_ONLY.get(job, ())})


# `seed=SEED` in a train rule's path: the pattern of the job's own chain.
SEED = "{seed}"
# w/o pseudo labels: step 2 of the full method's step-1 models, same schedule, no pseudo labels.
STEP1_OF = {"no_pseudo": "full"}


@dataclass(frozen=True)
class Chains:
    """The training chains, one per seed (folds, initialisation, batches; Table 1 is mean ±
    std over them): the first seed's under `root` (so a one-seed config keeps its paths), each
    other's under root/seed<N>."""

    root: Path
    seeds: list[int]
    # pseudo.rounds: steps 3 .. rounds + 1 after step 2; probe_votes: pseudo.agree lists probe
    rounds: int = 1
    probe_votes: bool = False
    min_new: int = 0  # pseudo.min_new: a round adding fewer labels stops the rounds

    @classmethod
    def of(cls, root: Path, train: dict) -> Chains:
        pseudo = parse_job(train, "pseudo")
        return cls(root, train_seeds(train), pseudo.rounds, "probe" in pseudo.agree, pseudo.min_new)

    @property
    def last_step(self) -> str:
        """The step the submission, the vote and Table 1 read: step rounds + 1."""
        return f"step{self.rounds + 1}"

    def voted_step(self, variant: str) -> str:
        """The last step of a variant (w/o pseudo labels has no rounds: step 2)."""
        return "step2" if variant == "no_pseudo" else self.last_step

    @staticmethod
    def pseudo_dir(r: int) -> str:
        """Round r's pseudo-label folder: `pseudo` (round 1, step 2's), then pseudo_r<r>."""
        return "pseudo" if r == 1 else f"pseudo_r{r}"

    def dir(self, seed: int) -> Path:
        return self.root if seed == self.seeds[0] else self.root / f"seed{seed}"

    @property
    def suffixes(self) -> dict[str, int]:
        """The train rules' `{seed}` wildcard, what a chain's folder adds to root (nothing for
        the first seed) -> its seed."""
        return {str(self.dir(s)).removeprefix(str(self.root)): s for s in self.seeds}

    @property
    def wildcard(self) -> str:
        """The `{seed}` wildcard's constraint, the configured seeds: a group, never an empty
        regex, which Snakemake would take for no constraint."""
        return "(?:" + "|".join(map(re.escape, self.suffixes)) + ")"

    def seed_of(self, wildcards) -> int:
        """The seed of a train job, from its `{seed}` wildcard."""
        return self.suffixes[wildcards.seed]

    def path(self, *parts: str, seed: int | str | None = None) -> Path:
        """A training output, `parts` under the chain of `seed`: an int, None for the first
        seed (whose chain the submission and the report read) or SEED (the rule's wildcard);
        e.g. path("full", "step2", "vote", "metrics.json")."""
        if seed == SEED:
            return Path(f"{self.root}{SEED}", *parts)
        return self.dir(self.seeds[0] if seed is None else seed).joinpath(*parts)

    def rows(self, table: Mapping[str, tuple[str, ...]], seeds) -> dict[str, list[Path]]:
        """A table's rows over `seeds`: label -> one file (`parts` in a chain) per seed."""
        return {label: [self.path(*parts, seed=s) for s in seeds] for label, parts in table.items()}

    def finetune_inputs(self, step: int, files: Mapping[str, Path]):
        """Input function of fine-tuning step 1 or 2: `files` (features, manifest), the
        pretrained model where the variant has one, and in step 2 the step-1 model it starts
        from and the pseudo labels (none w/o pseudo labels)."""

        def inputs(wc) -> dict[str, Path]:
            seed = self.seed_of(wc)
            found = dict(files)
            if VARIANTS[wc.variant].get("pretrained", True):
                nee = "no_nee" if wc.variant == "no_nee" else "nee"
                found["pretrained"] = self.path("pretrain", nee, "model.pt", seed=seed)
            if step == 2:
                step1 = STEP1_OF.get(wc.variant, wc.variant)
                found["init"] = self.path(step1, "step1", "model.pt", seed=seed)
                if wc.variant != "no_pseudo":
                    found["pseudo"] = self.path(wc.variant, "pseudo", "labels.csv", seed=seed)
            return found

        return inputs

    def round_inputs(self, step: int, files: Mapping[str, Path]):
        """Input function of step `step` >= 3, round r = step - 1 (docs/training.md, "Rounds and
        consensus"): step 2's inputs, but it starts from step r with round r's pseudo labels,
        and reads what decides an early stop (the two rounds' audits, step r's outputs)."""
        step2 = self.finetune_inputs(2, files)

        def inputs(wc) -> dict[str, Path]:
            seed, r = self.seed_of(wc), step - 1
            found = step2(wc)

            def path(*parts):
                return self.path(wc.variant, *parts, seed=seed)

            found["init"] = path(f"step{r}", "model.pt")
            found["pseudo"] = path(self.pseudo_dir(r), "labels.csv")
            found["audit"] = path(self.pseudo_dir(r), "audit.json")
            found["prev_audit"] = path(self.pseudo_dir(r - 1), "audit.json")
            found["prev_predictions"] = path(f"step{r}", "predictions.csv")
            found["prev_metrics"] = path(f"step{r}", "metrics.json")
            return found

        return inputs


def finetune_flags(wc, input) -> str:
    """A fine-tuning job's optional inputs as flags: --pretrained, --init, --pseudo (and in a
    round's step --audit, --prev-audit, --prev-predictions, --prev-metrics)."""
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(str(input[key]))}"
        for key in FINETUNE_FLAGS
        if key in input.keys()  # noqa: SIM118 - a Namedlist: `in` tests its values
    )


FINETUNE_FLAGS = (
    "pretrained", "init", "pseudo", "audit", "prev_audit", "prev_predictions", "prev_metrics",
)  # fmt: skip
