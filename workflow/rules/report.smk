# The HTML report over every step's metrics, the pseudo-label audit and the features.

REPORT_STAGES = {
    "MER2024 baseline": rules.baseline.output.metrics,
    "MR-CCL step 1 (F)": T / "full" / "step1" / "metrics.json",
    "MR-CCL step 1 (voted)": T / "full" / "step1" / "vote" / "metrics.json",
    "MR-CCL step 2 (F)": T / "full" / "step2" / "metrics.json",
    "MR-CCL step 2 (voted)": T / "full" / "step2" / "vote" / "metrics.json",
}


def labelled(flag, rows):
    return " ".join(
        f"{flag} {label + '=' + str(path)!r}" for label, path in rows.items()
    )


rule report:
    input:
        manifest=MANIFEST,
        stages=list(REPORT_STAGES.values()),
        ablations=list(ABLATION_ROWS.values()),
        audit=T / "full" / "pseudo" / "audit.json",
        features=list(FEATURE_FILES.values()),
    output:
        RESULTS / "report.html",
    log:
        "logs/report.log",
    params:
        stages=labelled("--stage", REPORT_STAGES),
        ablations=labelled("--ablation", ABLATION_ROWS),
        note=(
            "Demo run: tiny random models on generated clips."
            if MODELS["tiny"]
            else ""
        ),
        code=code_digest("mersemi.report"),
    shell:
        "mersemi report --manifest {input.manifest} {params.stages} {params.ablations}"
        " --final 'MR-CCL step 2 (voted)' --audit {input.audit} --features {input.features}"
        " --note {params.note:q} --out {output} 2> {log}"
