# Training: pretraining, baseline, step 1, pseudo labels, step 2, voting, ablations.
# Every step reads the merged features of the sets `train.features` names; `{variant}` is the
# full method or one ablation.
# One chain per seed of `train.seeds` (the `{seed}` wildcard: run_path), so
# Table 1 can report mean ± std over seeds.
# The chains' paths (run_path) and Table 1 are read by report.smk too, included after this file.
from mersemi.workflow import SEED, VARIANTS, finetune_flags, train_params

TRAIN = config["train"]
# results/train: one chain per seed (mersemi.workflow.Chains), the first seed's at the top.
CHAINS = RUN.chains
TRAIN_SEEDS = CHAINS.seeds
run_path = CHAINS.path  # run_path("full", "step2", seed=SEED): the rule's own chain
seed_of = CHAINS.seed_of  # a train job's seed, from its `{seed}` wildcard
# The merged feature file of each modality, from the set `train.features` names for it.
FEATURE_FILES = FEATURE_SETS.trained_files
TRAIN_CODE = code_digest("mersemi.train.cli")

VOTED = ("step2", "vote", "metrics.json")
# With pseudo.rounds > 1 (steps 3, 4, ...), Table 1 and the submission read the last step.
LAST = CHAINS.last_step
LAST_VOTED = (LAST, "vote", "metrics.json")
# The linear probe's predictions, an input of the pseudo labels where pseudo.agree lists it.
PROBE_VOTE = (
    {"probe": run_path("probe", "predictions.csv", seed=SEED)}
    if CHAINS.probe_votes
    else {}
)
# Table 1: label -> each chain's metrics JSON, in the paper's row order, with the linear
# probe after the MER2024 baseline (does the deep model earn its cost?).
TABLE1 = {
    "MER2024 baseline": ("baseline", "metrics.json"),
    "Linear probe (logistic regression)": ("probe", "metrics.json"),
    "MR-CCL (full)": ("full", *LAST_VOTED),
    "w/o contrastive pretraining": ("no_pretrain", *LAST_VOTED),
    "w/o NEE": ("no_nee", *LAST_VOTED),
    "w/o pseudo labels": ("no_pseudo", *VOTED),
    "w/o oversampling": ("no_oversample", *LAST_VOTED),
}


wildcard_constraints:
    seed=CHAINS.wildcard,
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
        p=lambda wc: train_params(
            TRAIN, "pretrain", nee=wc.pt == "nee", seed=seed_of(wc)
        ),
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
        p=lambda wc: train_params(TRAIN, "baseline", seed=seed_of(wc)),
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
        p=lambda wc: train_params(TRAIN, "probe", seed=seed_of(wc)),
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
            unpack(
                CHAINS.finetune_inputs(_step, {**FEATURE_FILES, "manifest": MANIFEST})
            ),
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
                TRAIN, job, variant=wc.variant, seed=seed_of(wc)
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
        **PROBE_VOTE,
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
        p=train_params(TRAIN, "pseudo"),
        truth=lambda wc, input: (
            f"--truth {shell_quote(input.truth)}" if "truth" in input.keys() else ""
        ),
        probe=lambda wc, input: (
            f" --probe {shell_quote(input.probe)}" if "probe" in input.keys() else ""
        ),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train pseudo --mrccl {input.mrccl:q} --baseline {input.baseline:q}"
        " {params.truth}{params.probe} --out {output.labels:q} --out-audit {output.audit:q} --out-sweep {output.sweep:q}"
        " --params {params.p:q} 2> {log:q}"


# Rounds 2 .. pseudo.rounds (docs/training.md, "Rounds and consensus"): round r's pseudo
# labels from step r's vote, then step r + 1 from step r on them (the step-2 params); a round
# adding fewer than pseudo.min_new labels passes step r through (`stopped_early`).
ROUND_VARIANTS = "|".join(v for v in VARIANTS if v != "no_pseudo")
for _r in range(2, CHAINS.rounds + 1):

    rule:
        name:
            f"pseudo_labels_r{_r}"
        input:
            **({"truth": DATA["pool_truth_csv"]} if DATA["pool_truth_csv"] else {}),
            **PROBE_VOTE,
            mrccl=run_path(
                "{variant}", f"step{_r}", "vote", "predictions.csv", seed=SEED
            ),
            baseline=run_path("baseline", "predictions.csv", seed=SEED),
        output:
            labels=run_path("{variant}", CHAINS.pseudo_dir(_r), "labels.csv", seed=SEED),
            audit=run_path("{variant}", CHAINS.pseudo_dir(_r), "audit.json", seed=SEED),
            sweep=run_path("{variant}", CHAINS.pseudo_dir(_r), "sweep.csv", seed=SEED),
        log:
            LOGS / f"train{{seed}}/{{variant}}_pseudo_r{_r}.log",
        wildcard_constraints:
            variant=ROUND_VARIANTS,
        conda:
            "../../envs/train.yaml"
        params:
            p=train_params(TRAIN, "pseudo"),
            flags=lambda wc, input: " ".join(
                f"--{k} {shell_quote(input[k])}"
                for k in ("truth", "probe")
                if k in input.keys()
            ),
            code=TRAIN_CODE,
        shell:
            "python -m mersemi train pseudo --mrccl {input.mrccl:q} --baseline {input.baseline:q}"
            " {params.flags} --out {output.labels:q} --out-audit {output.audit:q} --out-sweep {output.sweep:q}"
            " --params {params.p:q} 2> {log:q}"

    rule:
        name:
            f"finetune_step{_r + 1}"
        input:
            unpack(CHAINS.round_inputs(_r + 1, {**FEATURE_FILES, "manifest": MANIFEST})),
        output:
            model=run_path("{variant}", f"step{_r + 1}", "model.pt", seed=SEED),
            predictions=run_path(
                "{variant}", f"step{_r + 1}", "predictions.csv", seed=SEED
            ),
            metrics=run_path("{variant}", f"step{_r + 1}", "metrics.json", seed=SEED),
        log:
            LOGS / f"train{{seed}}/{{variant}}_step{_r + 1}.log",
        benchmark:
            BENCH / f"train{{seed}}/{{variant}}_step{_r + 1}.tsv"
        wildcard_constraints:
            variant=ROUND_VARIANTS,
        conda:
            "../../envs/train.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=240,
        params:
            p=lambda wc: train_params(
                TRAIN, "step2", variant=wc.variant, seed=seed_of(wc)
            ),
            min_new=CHAINS.min_new,
            flags=finetune_flags,
            code=TRAIN_CODE,
        shell:
            "python -m mersemi train finetune --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
            " --manifest {input.manifest:q} {params.flags} --min-new {params.min_new}"
            " --out-checkpoint {output.model:q} --out-predictions {output.predictions:q}"
            " --out-metrics {output.metrics:q} --params {params.p:q} 2> {log:q}"


if CHAINS.rounds > 1:

    # rounds.json: every round's pseudo labels (count, share, class mix, agreement,
    # precision) and the step it trained (WAF, stopped_early), read with Table 1.
    rule pseudo_rounds:
        input:
            audits=[
                run_path("{variant}", CHAINS.pseudo_dir(r), "audit.json", seed=SEED)
                for r in range(1, CHAINS.rounds + 1)
            ],
            metrics=[
                run_path("{variant}", f"step{r + 1}", "metrics.json", seed=SEED)
                for r in range(1, CHAINS.rounds + 1)
            ],
        output:
            run_path("{variant}", "rounds.json", seed=SEED),
        log:
            LOGS / "train{seed}/{variant}_rounds.log",
        wildcard_constraints:
            variant=ROUND_VARIANTS,
        conda:
            "../../envs/train.yaml"
        params:
            flags=lambda wc, input: " ".join(
                [f"--audit {shell_quote(a)}" for a in input.audits]
                + [f"--metrics {shell_quote(m)}" for m in input.metrics]
            ),
            code=TRAIN_CODE,
        shell:
            "python -m mersemi train rounds {params.flags} --out {output:q} 2> {log:q}"


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
        step="|".join(f"step{k}" for k in range(1, CHAINS.rounds + 2)),
    conda:
        "../../envs/train.yaml"
    params:
        p=train_params(TRAIN, "vote"),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train vote --predictions {input:q} --out-predictions {output.predictions:q}"
        " --out-metrics {output.metrics:q} --out-submission {output.submission:q}"
        " --out-status {output.status:q} --params {params.p:q} 2> {log:q}"


# The challenge file (name,discrete) and its sidecar (name,status: ok | no_valid_modality).
rule submission:
    input:
        submission=run_path("full", LAST, "vote", "submission.csv"),
        status=run_path("full", LAST, "vote", "submission_status.csv"),
    output:
        submission=RESULTS / "submission.csv",
        status=RESULTS / "submission_status.csv",
    log:
        LOGS / "submission.log",
    conda:
        "../../envs/media.yaml"
    shell:
        "(cp {input.submission:q} {output.submission:q} && cp {input.status:q} {output.status:q}) 2> {log:q}"


_TABLE1 = CHAINS.rows(TABLE1, TRAIN_SEEDS)
# With pseudo.rounds > 1, Table 1 is built with each chain's rounds.json beside it.
_ROUNDS = (
    [
        run_path(v, "rounds.json", seed=s)
        for v in VARIANTS
        if v != "no_pseudo"
        for s in TRAIN_SEEDS
    ]
    if CHAINS.rounds > 1
    else []
)


rule ablations:
    input:
        [p for paths in _TABLE1.values() for p in paths] + _ROUNDS,
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
