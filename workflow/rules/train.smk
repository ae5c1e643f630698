# Training: pretraining, baseline, step 1, pseudo labels, step 2, voting, ablations.
# Every step reads the merged features; `{variant}` is the full method or one ablation.


rule pretrain:
    input:
        **FEATURE_FILES,
        manifest=MANIFEST,
    output:
        model=T / "pretrain" / "{pt}" / "model.pt",
        metrics=T / "pretrain" / "{pt}" / "metrics.json",
    log:
        LOGS / "train/pretrain_{pt}.log",
    benchmark:
        BENCH / "train/pretrain_{pt}.tsv"
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
        p=lambda wc: train_params("pretrain", nee=wc.pt == "nee"),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train pretrain --acoustic {input.acoustic} --visual {input.visual} --text {input.text}"
        " --manifest {input.manifest}"
        " --out-checkpoint {output.model} --out-metrics {output.metrics}"
        " --params {params.p:q} 2> {log}"


rule baseline:
    input:
        **FEATURE_FILES,
        manifest=MANIFEST,
    output:
        model=T / "baseline" / "model.pt",
        predictions=T / "baseline" / "predictions.csv",
        metrics=T / "baseline" / "metrics.json",
    log:
        LOGS / "train/baseline.log",
    benchmark:
        BENCH / "train/baseline.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    params:
        p=train_params("baseline"),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train baseline --acoustic {input.acoustic} --visual {input.visual} --text {input.text}"
        " --manifest {input.manifest}"
        " --out-checkpoint {output.model} --out-predictions {output.predictions}"
        " --out-metrics {output.metrics} --params {params.p:q} 2> {log}"


for _step in (1, 2):

    rule:
        name:
            f"finetune_step{_step}"
        input:
            unpack(finetune_inputs(_step)),
        output:
            model=T / "{variant}" / f"step{_step}" / "model.pt",
            predictions=T / "{variant}" / f"step{_step}" / "predictions.csv",
            metrics=T / "{variant}" / f"step{_step}" / "metrics.json",
        log:
            LOGS / f"train/{{variant}}_step{_step}.log",
        benchmark:
            BENCH / f"train/{{variant}}_step{_step}.tsv"
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
            p=lambda wc, step=_step: train_params(
                "finetune",
                **(TRAIN["step2"] if step == 2 else {}),
                **VARIANTS[wc.variant],
            ),
            flags=finetune_flags,
            step=_step,
            code=TRAIN_CODE,
        shell:
            "python -m mersemi train finetune --step {params.step} --acoustic {input.acoustic} --visual {input.visual} --text {input.text}"
            " --manifest {input.manifest} {params.flags} --out-checkpoint {output.model}"
            " --out-predictions {output.predictions} --out-metrics {output.metrics}"
            " --params {params.p:q} 2> {log}"


rule pseudo_labels:
    input:
        **({"truth": DATA["pool_truth_csv"]} if DATA["pool_truth_csv"] else {}),
        mrccl=T / "{variant}" / "step1" / "vote" / "predictions.csv",
        baseline=rules.baseline.output.predictions,
    output:
        labels=T / "{variant}" / "pseudo" / "labels.csv",
        audit=T / "{variant}" / "pseudo" / "audit.json",
        sweep=T / "{variant}" / "pseudo" / "sweep.csv",
    log:
        LOGS / "train/{variant}_pseudo.log",
    conda:
        "../../envs/train.yaml"
    params:
        p=train_params("pseudo"),
        truth=lambda wc, input: (
            f"--truth {input.truth}" if "truth" in input.keys() else ""
        ),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train pseudo --mrccl {input.mrccl} --baseline {input.baseline}"
        " {params.truth} --out {output.labels} --out-audit {output.audit} --out-sweep {output.sweep}"
        " --params {params.p:q} 2> {log}"


rule vote:
    input:
        T / "{variant}" / "{step}" / "predictions.csv",
    output:
        predictions=T / "{variant}" / "{step}" / "vote" / "predictions.csv",
        metrics=T / "{variant}" / "{step}" / "vote" / "metrics.json",
        submission=T / "{variant}" / "{step}" / "vote" / "submission.csv",
    log:
        LOGS / "train/{variant}_{step}_vote.log",
    wildcard_constraints:
        step="step1|step2",
    conda:
        "../../envs/train.yaml"
    params:
        p=train_params("vote"),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train vote --predictions {input} --out-predictions {output.predictions}"
        " --out-metrics {output.metrics} --out-submission {output.submission}"
        " --params {params.p:q} 2> {log}"


rule submission:
    input:
        T / "full" / "step2" / "vote" / "submission.csv",
    output:
        RESULTS / "submission.csv",
    log:
        LOGS / "submission.log",
    conda:
        "../../envs/media.yaml"
    shell:
        "cp {input} {output} 2> {log}"


rule ablations:
    input:
        list(ABLATION_ROWS.values()),
    output:
        csv=RESULTS / "ablations" / "table1.csv",
        md=RESULTS / "ablations" / "table1.md",
        json=RESULTS / "ablations" / "table1.json",
    log:
        LOGS / "train/ablations.log",
    conda:
        "../../envs/train.yaml"
    params:
        rows=" ".join(
            f"--row {label + '=' + str(path)!r}"
            for label, path in ABLATION_ROWS.items()
        ),
        code=TRAIN_CODE,
    shell:
        "python -m mersemi train ablations {params.rows} --out-csv {output.csv} --out-md {output.md}"
        " --out-json {output.json} 2> {log}"
