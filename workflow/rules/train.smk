# Training: pretraining, baseline, step 1, pseudo labels, step 2, voting, ablations.
# Every step reads the merged features; `{variant}` is the full method or one ablation.

TRAIN = config["train"]
T = RESULTS / "train"
FEATURE_FILES = {m: FEATURES / f"{m}.h5" for m in ("acoustic", "visual", "text")}
FEATURE_FLAGS = (
    "--acoustic {input.acoustic} --visual {input.visual} --text {input.text}"
)
TRAIN_CODE = code_digest("mersemi.train.cli")
# Ablations (paper, Table 1): the params each variant overrides, and its pretraining.
VARIANTS = {
    "full": {},
    "no_pretrain": {"pretrained": False},
    "no_nee": {"nee": False},
    "no_oversample": {"oversample": False},
}


def train_params(step, **extra):
    common = TRAIN["common"] if step in ("pretrain", "baseline", "finetune") else {}
    return as_json(common | TRAIN[step] | extra)


def pretrain_of(variant):
    return T / "pretrain" / ("no_nee" if variant == "no_nee" else "nee") / "model.pt"


def finetune_inputs(step):
    def inputs(wc):
        files = {**FEATURE_FILES, "manifest": MANIFEST}
        if VARIANTS[wc.variant].get("pretrained", True):
            files["pretrained"] = pretrain_of(wc.variant)
        if step == 2:
            files["init"] = T / wc.variant / "step1" / "model.pt"
            files["pseudo"] = T / wc.variant / "pseudo" / "labels.csv"
        return files

    return inputs


def finetune_flags(wc, input):
    return " ".join(
        f"--{key} {input[key]}"
        for key in ("pretrained", "init", "pseudo")
        if key in input.keys()
    )


rule pretrain:
    input:
        **FEATURE_FILES,
        manifest=MANIFEST,
    output:
        model=T / "pretrain" / "{pt}" / "model.pt",
        metrics=T / "pretrain" / "{pt}" / "metrics.json",
    log:
        "logs/train/pretrain_{pt}.log",
    benchmark:
        "benchmarks/runs/train/pretrain_{pt}.tsv"
    wildcard_constraints:
        pt="nee|no_nee",
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        p=lambda wc: train_params("pretrain", nee=wc.pt == "nee"),
        code=TRAIN_CODE,
    shell:
        "mersemi train pretrain " + FEATURE_FLAGS + " --manifest {input.manifest}"
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
        "logs/train/baseline.log",
    benchmark:
        "benchmarks/runs/train/baseline.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    params:
        p=train_params("baseline"),
        code=TRAIN_CODE,
    shell:
        "mersemi train baseline " + FEATURE_FLAGS + " --manifest {input.manifest}"
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
            f"logs/train/{{variant}}_step{_step}.log",
        benchmark:
            f"benchmarks/runs/train/{{variant}}_step{_step}.tsv"
        wildcard_constraints:
            variant="|".join(VARIANTS),
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
            "mersemi train finetune --step {params.step} " + FEATURE_FLAGS + ""
            " --manifest {input.manifest} {params.flags} --out-checkpoint {output.model}"
            " --out-predictions {output.predictions} --out-metrics {output.metrics}"
            " --params {params.p:q} 2> {log}"


rule pseudo_labels:
    input:
        mrccl=T / "{variant}" / "step1" / "vote" / "predictions.csv",
        baseline=rules.baseline.output.predictions,
    output:
        labels=T / "{variant}" / "pseudo" / "labels.csv",
        audit=T / "{variant}" / "pseudo" / "audit.json",
        sweep=T / "{variant}" / "pseudo" / "sweep.csv",
    log:
        "logs/train/{variant}_pseudo.log",
    params:
        p=train_params("pseudo"),
        code=TRAIN_CODE,
    shell:
        "mersemi train pseudo --mrccl {input.mrccl} --baseline {input.baseline}"
        " --out {output.labels} --out-audit {output.audit} --out-sweep {output.sweep}"
        " --params {params.p:q} 2> {log}"


rule vote:
    input:
        T / "{variant}" / "{step}" / "predictions.csv",
    output:
        predictions=T / "{variant}" / "{step}" / "vote" / "predictions.csv",
        metrics=T / "{variant}" / "{step}" / "vote" / "metrics.json",
        submission=T / "{variant}" / "{step}" / "vote" / "submission.csv",
    log:
        "logs/train/{variant}_{step}_vote.log",
    wildcard_constraints:
        step="step1|step2",
    params:
        p=train_params("vote"),
        code=TRAIN_CODE,
    shell:
        "mersemi train vote --predictions {input} --out-predictions {output.predictions}"
        " --out-metrics {output.metrics} --out-submission {output.submission}"
        " --params {params.p:q} 2> {log}"


rule submission:
    input:
        T / "full" / "step2" / "vote" / "submission.csv",
    output:
        RESULTS / "submission.csv",
    shell:
        "cp {input} {output}"


# Table 1: label -> metrics JSON, in the paper's row order.
ABLATION_ROWS = {
    "MER2024 baseline": rules.baseline.output.metrics,
    "MR-CCL (full)": T / "full" / "step2" / "vote" / "metrics.json",
    "w/o contrastive pretraining": T
    / "no_pretrain"
    / "step2"
    / "vote"
    / "metrics.json",
    "w/o NEE": T / "no_nee" / "step2" / "vote" / "metrics.json",
    "w/o pseudo labels": T / "full" / "step1" / "vote" / "metrics.json",
    "w/o oversampling": T / "no_oversample" / "step2" / "vote" / "metrics.json",
}


rule ablations:
    input:
        list(ABLATION_ROWS.values()),
    output:
        csv=RESULTS / "ablations" / "table1.csv",
        md=RESULTS / "ablations" / "table1.md",
        json=RESULTS / "ablations" / "table1.json",
    log:
        "logs/train/ablations.log",
    params:
        rows=" ".join(
            f"--row {label + '=' + str(path)!r}"
            for label, path in ABLATION_ROWS.items()
        ),
        code=TRAIN_CODE,
    shell:
        "mersemi train ablations {params.rows} --out-csv {output.csv} --out-md {output.md}"
        " --out-json {output.json} 2> {log}"
