# Training: pretraining, baseline, step 1, pseudo labels, step 2, voting, ablations.
# Every step reads the merged features; `{variant}` is the full method or one ablation.
# One chain per seed of `train.seeds` (the `{seed}` wildcard: run_path), so
# Table 1 can report mean ± std over seeds.
# The helpers below (chains, Table 1) are read by report.smk too, included after this file.
import re
from pathlib import Path

from mersemi.workflow import VARIANTS, job_params

TRAIN = config["train"]
T = RESULTS / "train"
# Seeds of the whole training chain (folds, initialisation, batches); Table 1 is mean ± std.
TRAIN_SEEDS = RUN.train_seeds


def chain_dir(seed):
    """One training chain per seed: the first seed's under T (so a one-seed config keeps its
    paths), each other's under T/seed<N>."""
    return T if seed == TRAIN_SEEDS[0] else T / f"seed{seed}"


# The train rules' `{seed}` wildcard is what a chain's folder adds to T (nothing for the
# first seed), constrained to the configured seeds: a group, never an empty regex, which
# Snakemake would take for no constraint.
SEED_SUFFIX = {str(chain_dir(s)).removeprefix(str(T)): s for s in TRAIN_SEEDS}
SEED_WILDCARD = "(?:" + "|".join(map(re.escape, SEED_SUFFIX)) + ")"
# `seed=SEED` in a rule: the path pattern of the job's own chain.
SEED = "{seed}"


def seed_of(wildcards):
    """The seed of a train job, from its `{seed}` wildcard."""
    return SEED_SUFFIX[wildcards.seed]


def run_path(*parts, seed=None):
    """A training output, `parts` under the chain of `seed`: an int, None for the first seed
    (whose chain the submission and the report read) or SEED (the rule's wildcard); e.g.
    run_path("full", "step2", "vote", "metrics.json")."""
    if seed == SEED:
        return Path(f"{T}{SEED}", *parts)
    return chain_dir(TRAIN_SEEDS[0] if seed is None else seed).joinpath(*parts)


FEATURE_FILES = {m: FEATURES / f"{m}.h5" for m in ("acoustic", "visual", "text")}
TRAIN_CODE = code_digest("mersemi.train.cli")
# w/o pseudo labels: step 2 of the full method's step-1 models, same schedule, no pseudo labels.
STEP1_OF = {"no_pseudo": "full"}


def train_params(job, **kw):
    """A train job's `--params` JSON (train.params.job_params: the one merge of the config's
    sections, the fine-tuning step, a variant's overrides)."""
    return as_json(job_params(TRAIN, job, **kw))


def pretrain_of(variant, seed):
    nee = "no_nee" if variant == "no_nee" else "nee"
    return run_path("pretrain", nee, "model.pt", seed=seed)


def finetune_inputs(step):
    def inputs(wc):
        files = {**FEATURE_FILES, "manifest": MANIFEST}
        if VARIANTS[wc.variant].get("pretrained", True):
            files["pretrained"] = pretrain_of(wc.variant, seed_of(wc))
        if step == 2:
            step1 = STEP1_OF.get(wc.variant, wc.variant)
            files["init"] = run_path(step1, "step1", "model.pt", seed=seed_of(wc))
            if wc.variant != "no_pseudo":
                files["pseudo"] = run_path(
                    wc.variant, "pseudo", "labels.csv", seed=seed_of(wc)
                )
        return files

    return inputs


def finetune_flags(wc, input):
    return " ".join(
        f"--{key} {shell_quote(input[key])}"
        for key in ("pretrained", "init", "pseudo")
        if key in input.keys()
    )


VOTED = ("step2", "vote", "metrics.json")
# Table 1: label -> each chain's metrics JSON, in the paper's row order, with the linear
# probe after the MER2024 baseline (does the deep model earn its cost?).
TABLE1 = {
    "MER2024 baseline": ("baseline", "metrics.json"),
    "Linear probe (logistic regression)": ("probe", "metrics.json"),
    "MR-CCL (full)": ("full", *VOTED),
    "w/o contrastive pretraining": ("no_pretrain", *VOTED),
    "w/o NEE": ("no_nee", *VOTED),
    "w/o pseudo labels": ("no_pseudo", *VOTED),
    "w/o oversampling": ("no_oversample", *VOTED),
}


def table1_rows(seeds):
    """Table 1's rows over `seeds`: label -> one metrics JSON per seed."""
    return {
        label: [run_path(*parts, seed=s) for s in seeds]
        for label, parts in TABLE1.items()
    }


wildcard_constraints:
    seed=SEED_WILDCARD,
    variant="|".join(VARIANTS),


rule pretrain:
    input:
        **FEATURE_FILES,
        manifest=SPLITS,
    output:
        model=run_path("pretrain", "{pt}", "model.pt", seed=SEED),
        metrics=run_path("pretrain", "{pt}", "metrics.json", seed=SEED),
    log:
        LOGS / "train{seed}/pretrain_{pt}.log",
    benchmark:
        BENCH / "train{seed}/pretrain_{pt}.tsv"
    wildcard_constraints:
        pt="nee|no_nee",
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        p=lambda wc: train_params("pretrain", nee=wc.pt == "nee", seed=seed_of(wc)),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train pretrain --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
        " --manifest {input.manifest:q}"
        " --out-checkpoint {output.model:q} --out-metrics {output.metrics:q}"
        " --params {params.p:q} 2> {log:q}"


rule baseline:
    input:
        **FEATURE_FILES,
        manifest=MANIFEST,
    output:
        model=run_path("baseline", "model.pt", seed=SEED),
        predictions=run_path("baseline", "predictions.csv", seed=SEED),
        metrics=run_path("baseline", "metrics.json", seed=SEED),
    log:
        LOGS / "train{seed}/baseline.log",
    benchmark:
        BENCH / "train{seed}/baseline.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    params:
        p=lambda wc: train_params("baseline", seed=seed_of(wc)),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train baseline --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
        " --manifest {input.manifest:q}"
        " --out-checkpoint {output.model:q} --out-predictions {output.predictions:q}"
        " --out-metrics {output.metrics:q} --params {params.p:q} 2> {log:q}"


rule probe:
    input:
        **FEATURE_FILES,
        manifest=MANIFEST,
    output:
        predictions=run_path("probe", "predictions.csv", seed=SEED),
        metrics=run_path("probe", "metrics.json", seed=SEED),
    log:
        LOGS / "train{seed}/probe.log",
    benchmark:
        BENCH / "train{seed}/probe.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        p=lambda wc: train_params("probe", seed=seed_of(wc)),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train probe --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
        " --manifest {input.manifest:q}"
        " --out-predictions {output.predictions:q} --out-metrics {output.metrics:q}"
        " --params {params.p:q} 2> {log:q}"


# Steps 1 and 2: the step is named in --params (train.params.parse_finetune applies its
# defaults), so no flag can disagree with it.
for _step, _job in ((1, "finetune"), (2, "step2")):

    rule:
        name:
            f"finetune_step{_step}"
        input:
            unpack(finetune_inputs(_step)),
        output:
            model=run_path("{variant}", f"step{_step}", "model.pt", seed=SEED),
            predictions=run_path(
                "{variant}", f"step{_step}", "predictions.csv", seed=SEED
            ),
            metrics=run_path("{variant}", f"step{_step}", "metrics.json", seed=SEED),
        log:
            LOGS / f"train{{seed}}/{{variant}}_step{_step}.log",
        benchmark:
            BENCH / f"train{{seed}}/{{variant}}_step{_step}.tsv"
        conda:
            "../../envs/train.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=240,
        params:
            p=lambda wc, job=_job: train_params(
                job, variant=wc.variant, seed=seed_of(wc)
            ),
            flags=finetune_flags,
            code=TRAIN_CODE,
        shell:
            "python -m mersemi train finetune --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
            " --manifest {input.manifest:q} {params.flags} --out-checkpoint {output.model:q}"
            " --out-predictions {output.predictions:q} --out-metrics {output.metrics:q}"
            " --params {params.p:q} 2> {log:q}"


rule pseudo_labels:
    input:
        **({"truth": DATA["pool_truth_csv"]} if DATA["pool_truth_csv"] else {}),
        mrccl=run_path("{variant}", "step1", "vote", "predictions.csv", seed=SEED),
        baseline=run_path("baseline", "predictions.csv", seed=SEED),
    output:
        labels=run_path("{variant}", "pseudo", "labels.csv", seed=SEED),
        audit=run_path("{variant}", "pseudo", "audit.json", seed=SEED),
        sweep=run_path("{variant}", "pseudo", "sweep.csv", seed=SEED),
    log:
        LOGS / "train{seed}/{variant}_pseudo.log",
    conda:
        "../../envs/train.yaml"
    params:
        p=train_params("pseudo"),
        truth=lambda wc, input: (
            f"--truth {shell_quote(input.truth)}" if "truth" in input.keys() else ""
        ),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train pseudo --mrccl {input.mrccl:q} --baseline {input.baseline:q}"
        " {params.truth} --out {output.labels:q} --out-audit {output.audit:q} --out-sweep {output.sweep:q}"
        " --params {params.p:q} 2> {log:q}"


rule vote:
    input:
        run_path("{variant}", "{step}", "predictions.csv", seed=SEED),
    output:
        predictions=run_path(
            "{variant}", "{step}", "vote", "predictions.csv", seed=SEED
        ),
        metrics=run_path("{variant}", "{step}", "vote", "metrics.json", seed=SEED),
        submission=run_path("{variant}", "{step}", "vote", "submission.csv", seed=SEED),
        status=run_path(
            "{variant}", "{step}", "vote", "submission_status.csv", seed=SEED
        ),
    log:
        LOGS / "train{seed}/{variant}_{step}_vote.log",
    wildcard_constraints:
        step="step1|step2",
    conda:
        "../../envs/train.yaml"
    params:
        p=train_params("vote"),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train vote --predictions {input:q} --out-predictions {output.predictions:q}"
        " --out-metrics {output.metrics:q} --out-submission {output.submission:q}"
        " --out-status {output.status:q} --params {params.p:q} 2> {log:q}"


# The challenge file (name,discrete) and its sidecar (name,status: ok | no_valid_modality).
rule submission:
    input:
        submission=run_path("full", "step2", "vote", "submission.csv"),
        status=run_path("full", "step2", "vote", "submission_status.csv"),
    output:
        submission=RESULTS / "submission.csv",
        status=RESULTS / "submission_status.csv",
    log:
        LOGS / "submission.log",
    conda:
        "../../envs/media.yaml"
    shell:
        "(cp {input.submission:q} {output.submission:q} && cp {input.status:q} {output.status:q}) 2> {log:q}"


_TABLE1 = table1_rows(TRAIN_SEEDS)


rule ablations:
    input:
        [p for paths in _TABLE1.values() for p in paths],
    output:
        csv=report(
            RESULTS / "ablations" / "table1.csv",
            caption="../report/table1.rst",
            category="1. Summary",
        ),
        md=RESULTS / "ablations" / "table1.md",
        json=RESULTS / "ablations" / "table1.json",
    log:
        LOGS / "train/ablations.log",
    conda:
        "../../envs/train.yaml"
    params:
        rows=" ".join(
            f"--row {shell_quote(f'{label}={path}')}"
            for label, paths in _TABLE1.items()
            for path in paths
        ),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train ablations {params.rows} --out-csv {output.csv:q} --out-md {output.md:q}"
        " --out-json {output.json:q} 2> {log:q}"
