# Training: pretraining, baseline, step 1, pseudo labels, step 2, voting, ablations.
# Every step reads the merged features; `{variant}` is the full method or one ablation.
# One chain per seed of `train.seeds`: the first under T, the others under T/seed<N> (rule
# names get a _seed<N> suffix), so Table 1 can report mean ± std over seeds.

for _seed in TRAIN_SEEDS:
    _TS = seed_dir(_seed)
    _SFX = "" if _TS == T else f"_seed{_seed}"

    rule:
        name:
            f"pretrain{_SFX}"
        input:
            **FEATURE_FILES,
            manifest=SPLITS,
        output:
            model=_TS / "pretrain" / "{pt}" / "model.pt",
            metrics=_TS / "pretrain" / "{pt}" / "metrics.json",
        log:
            LOGS / f"train/pretrain{_SFX}_{{pt}}.log",
        benchmark:
            BENCH / f"train/pretrain{_SFX}_{{pt}}.tsv"
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
            p=lambda wc, seed=_seed: train_params(
                "pretrain", nee=wc.pt == "nee", seed=seed
            ),
            code=TRAIN_CODE,
        shell:
            "python -m mersemi train pretrain --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
            " --manifest {input.manifest:q}"
            " --out-checkpoint {output.model:q} --out-metrics {output.metrics:q}"
            " --params {params.p:q} 2> {log:q}"

    rule:
        name:
            f"baseline{_SFX}"
        input:
            **FEATURE_FILES,
            manifest=MANIFEST,
        output:
            model=_TS / "baseline" / "model.pt",
            predictions=_TS / "baseline" / "predictions.csv",
            metrics=_TS / "baseline" / "metrics.json",
        log:
            LOGS / f"train/baseline{_SFX}.log",
        benchmark:
            BENCH / f"train/baseline{_SFX}.tsv"
        conda:
            "../../envs/train.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=120,
        params:
            p=train_params("baseline", seed=_seed),
            code=TRAIN_CODE,
        shell:
            "python -m mersemi train baseline --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
            " --manifest {input.manifest:q}"
            " --out-checkpoint {output.model:q} --out-predictions {output.predictions:q}"
            " --out-metrics {output.metrics:q} --params {params.p:q} 2> {log:q}"

    rule:
        name:
            f"probe{_SFX}"
        input:
            **FEATURE_FILES,
            manifest=MANIFEST,
        output:
            predictions=_TS / "probe" / "predictions.csv",
            metrics=_TS / "probe" / "metrics.json",
        log:
            LOGS / f"train/probe{_SFX}.log",
        benchmark:
            BENCH / f"train/probe{_SFX}.tsv"
        conda:
            "../../envs/train.yaml"
        threads: 1
        resources:
            mem_mb=16000,
            runtime=60,
        params:
            p=as_json((TRAIN.get("probe") or {}) | {"seed": _seed}),
            code=TRAIN_CODE,
        shell:
            "python -m mersemi train probe --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
            " --manifest {input.manifest:q}"
            " --out-predictions {output.predictions:q} --out-metrics {output.metrics:q}"
            " --params {params.p:q} 2> {log:q}"

    for _step in (1, 2):

        rule:
            name:
                f"finetune_step{_step}{_SFX}"
            input:
                unpack(finetune_inputs(_step, _TS)),
            output:
                model=_TS / "{variant}" / f"step{_step}" / "model.pt",
                predictions=_TS / "{variant}" / f"step{_step}" / "predictions.csv",
                metrics=_TS / "{variant}" / f"step{_step}" / "metrics.json",
            log:
                LOGS / f"train/{{variant}}{_SFX}_step{_step}.log",
            benchmark:
                BENCH / f"train/{{variant}}{_SFX}_step{_step}.tsv"
            wildcard_constraints:
                variant="|".join(VARIANTS),
            conda:
                "../../envs/train.yaml"
            threads: 2
            resources:
                gpu=1,
                mem_mb=16000,
                runtime=240,
            params:
                p=lambda wc, step=_step, seed=_seed: train_params(
                    "finetune",
                    **(TRAIN["step2"] if step == 2 else {}),
                    **VARIANTS[wc.variant],
                    seed=seed,
                ),
                flags=finetune_flags,
                step=_step,
                code=TRAIN_CODE,
            shell:
                "python -m mersemi train finetune --step {params.step} --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
                " --manifest {input.manifest:q} {params.flags} --out-checkpoint {output.model:q}"
                " --out-predictions {output.predictions:q} --out-metrics {output.metrics:q}"
                " --params {params.p:q} 2> {log:q}"

    rule:
        name:
            f"pseudo_labels{_SFX}"
        input:
            **({"truth": DATA["pool_truth_csv"]} if DATA["pool_truth_csv"] else {}),
            mrccl=_TS / "{variant}" / "step1" / "vote" / "predictions.csv",
            baseline=_TS / "baseline" / "predictions.csv",
        output:
            labels=_TS / "{variant}" / "pseudo" / "labels.csv",
            audit=_TS / "{variant}" / "pseudo" / "audit.json",
            sweep=_TS / "{variant}" / "pseudo" / "sweep.csv",
        log:
            LOGS / f"train/{{variant}}{_SFX}_pseudo.log",
        wildcard_constraints:
            variant="|".join(VARIANTS),
        conda:
            "../../envs/train.yaml"
        params:
            p=train_params("pseudo"),
            truth=lambda wc, input: (
                f"--truth {shell_quote(input.truth)}"
                if "truth" in input.keys()
                else ""
            ),
            code=TRAIN_CODE,
        shell:
            "python -m mersemi train pseudo --mrccl {input.mrccl:q} --baseline {input.baseline:q}"
            " {params.truth} --out {output.labels:q} --out-audit {output.audit:q} --out-sweep {output.sweep:q}"
            " --params {params.p:q} 2> {log:q}"

    rule:
        name:
            f"vote{_SFX}"
        input:
            _TS / "{variant}" / "{step}" / "predictions.csv",
        output:
            predictions=_TS / "{variant}" / "{step}" / "vote" / "predictions.csv",
            metrics=_TS / "{variant}" / "{step}" / "vote" / "metrics.json",
            submission=_TS / "{variant}" / "{step}" / "vote" / "submission.csv",
            status=_TS / "{variant}" / "{step}" / "vote" / "submission_status.csv",
        log:
            LOGS / f"train/{{variant}}{_SFX}_{{step}}_vote.log",
        wildcard_constraints:
            step="step1|step2",
            variant="|".join(VARIANTS),
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
        submission=T / "full" / "step2" / "vote" / "submission.csv",
        status=T / "full" / "step2" / "vote" / "submission_status.csv",
    output:
        submission=RESULTS / "submission.csv",
        status=RESULTS / "submission_status.csv",
    log:
        LOGS / "submission.log",
    conda:
        "../../envs/media.yaml"
    shell:
        "(cp {input.submission:q} {output.submission:q} && cp {input.status:q} {output.status:q}) 2> {log:q}"


# Table 1 with the linear probe after the MER2024 baseline: does the deep model earn its cost?
_TABLE1 = dict(list(ABLATION_SEED_ROWS.items())[:1])
_TABLE1["Linear probe (logistic regression)"] = [
    seed_dir(s) / "probe" / "metrics.json" for s in TRAIN_SEEDS
]
_TABLE1 |= ABLATION_SEED_ROWS


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
