# The HTML report over every step's metrics, the pseudo-label audit and the features.


rule report:
    input:
        manifest=MANIFEST,
        stages=list(REPORT_STAGES.values()),
        folds=list(REPORT_FOLDS.values()),
        ablations=list(ABLATION_ROWS.values()),
        audit=T / "full" / "pseudo" / "audit.json",
        features=list(FEATURE_FILES.values()),
    output:
        RESULTS / "report.html",
    log:
        LOGS / "report.log",
    conda:
        "../../envs/media.yaml"
    params:
        stages=labelled("--stage", REPORT_STAGES),
        folds=labelled("--folds", REPORT_FOLDS),
        ablations=labelled("--ablation", ABLATION_ROWS),
        note=(
            "Demo run: tiny random models on generated clips."
            if MODELS["tiny"]
            else ""
        ),
        code=code_digest("mersemi.report"),
    shell:
        "python -m mersemi report --manifest {input.manifest} {params.stages} {params.folds}"
        " {params.ablations}"
        " --final 'MR-CCL step 2 (voted)' --audit {input.audit} --features {input.features}"
        " --note {params.note:q} --out {output} 2> {log}"
