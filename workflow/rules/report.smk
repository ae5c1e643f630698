# The run's report: `snakemake --report results/report.zip` (or .html) gathers the outputs
# marked report(...) below, with captions from workflow/report/. The summary page (tables) is
# `mersemi report`; the plots are `mersemi plots`.

# The chains' paths (run_path, TABLE1, FEATURE_FILES) are train.smk's; the feature benchmark
# is benchmark.smk's.
# The final scores are the submission's: step 2's vote, or with pseudo.rounds R > 1 the last
# step's (step R + 1), whose rounds the report tables from rounds.json.
FINAL_STAGE = f"MR-CCL step {CHAINS.rounds + 1} (voted)"
REPORT_STAGES = {
    "MER2024 baseline": run_path("baseline", "metrics.json"),
    "MR-CCL step 1 (voted)": run_path("full", "step1", "vote", "metrics.json"),
    "MR-CCL step 2 (voted)": run_path("full", *VOTED),
    FINAL_STAGE: run_path("full", *LAST_VOTED),
}
REPORT_ROUNDS = [run_path("full", "rounds.json")] if CHAINS.rounds > 1 else []
# Training-fold class distributions (after oversampling and pseudo labels).
REPORT_FOLDS = {
    "step 1 training folds": run_path("full", "step1", "metrics.json"),
    "step 2 training folds": run_path("full", "step2", "metrics.json"),
}


# The summary's Table 1: the rows of the ablations rule, of the first seed's chain.
_REPORT_TABLE1 = {
    label: paths[0] for label, paths in CHAINS.rows(TABLE1, TRAIN_SEEDS[:1]).items()
}


rule report:
    input:
        manifest=MANIFEST,
        stages=list(REPORT_STAGES.values()),
        folds=list(REPORT_FOLDS.values()),
        ablations=list(_REPORT_TABLE1.values()),
        audit=run_path("full", "pseudo", "audit.json"),
        rounds=REPORT_ROUNDS,
        features=list(FEATURE_FILES.values()),
        bench=rules.feature_benchmark.output.json,
        bench_plot=rules.feature_benchmark.output.plot,
    output:
        report(
            RESULTS / "report.html",
            caption="../report/summary.rst",
            category="1. Summary",
        ),
    log:
        LOGS / "report.log",
    conda:
        "../../envs/media.yaml"
    params:
        stages=labelled("--stage", REPORT_STAGES),
        folds=labelled("--folds", REPORT_FOLDS),
        ablations=labelled("--ablation", _REPORT_TABLE1),
        final=shell_quote(FINAL_STAGE),
        rounds=" ".join(f"--rounds {shell_quote(str(r))}" for r in REPORT_ROUNDS),
        # `--note` only with something to say: an empty quoted word would be no word at all.
        note=(
            "--note "
            + shell_quote(
                "Demo run: tiny random models on generated clips."
                if DATA["demo"]
                else "Tiny random models (models.tiny): these scores say nothing about real models."
            )
            if MODELS["tiny"]
            else ""
        ),
        code=code_digest("mersemi.report.page"),
    shell:
        "python -m mersemi report --manifest {input.manifest:q} {params.stages} {params.folds}"
        " {params.ablations}"
        " --final {params.final} --audit {input.audit:q} {params.rounds} --features {input.features:q}"
        " --feature-bench {input.bench:q} --feature-bench-plot {input.bench_plot:q}"
        " {params.note} --out {output:q} 2> {log:q}"


rule plots:
    input:
        baseline=REPORT_STAGES["MER2024 baseline"],
        step1=REPORT_FOLDS["step 1 training folds"],
        step2=REPORT_FOLDS["step 2 training folds"],
        vote1=REPORT_STAGES["MR-CCL step 1 (voted)"],
        vote2=REPORT_STAGES["MR-CCL step 2 (voted)"],
        final=REPORT_STAGES[FINAL_STAGE],
        sweep=run_path("full", "pseudo", "sweep.csv"),
        audit=run_path("full", "pseudo", "audit.json"),
        features=list(FEATURE_FILES.values()),
    output:
        training=report(
            RESULTS / "plots" / "training_curves.png",
            caption="../report/training_curves.rst",
            category="2. Training",
        ),
        confusion=report(
            RESULTS / "plots" / "confusion.png",
            caption="../report/confusion.rst",
            category="2. Training",
        ),
        f1=report(
            RESULTS / "plots" / "f1_per_class.png",
            caption="../report/f1_per_class.rst",
            category="2. Training",
        ),
        sweep=report(
            RESULTS / "plots" / "pseudo_label_sweep.png",
            caption="../report/pseudo_label_sweep.rst",
            category="3. Pseudo labels",
        ),
        features=report(
            RESULTS / "plots" / "feature_validity.png",
            caption="../report/feature_validity.rst",
            category="4. Features",
        ),
    log:
        LOGS / "plots.log",
    conda:
        "../../envs/train.yaml"
    params:
        reasons=" ".join(
            shell_quote(f"{m}={FEATURE_SETS.folder(FEATURE_SETS.trained[m])}")
            for m in ("visual", "acoustic", "text")
        ),
        code=code_digest("mersemi.report.plots"),
    shell:
        "(python -m mersemi plots training --metrics baseline={input.baseline:q}"
        " 'MR-CCL step 1'={input.step1:q} 'MR-CCL step 2'={input.step2:q} --out {output.training:q}"
        " && python -m mersemi plots confusion --metrics {input.final:q} --out {output.confusion:q}"
        " && python -m mersemi plots f1 --metrics baseline={input.baseline:q}"
        " 'step 1 (voted)'={input.vote1:q} 'step 2 (voted)'={input.vote2:q} --out {output.f1:q}"
        " && python -m mersemi plots sweep --sweep {input.sweep:q} --audit {input.audit:q}"
        " --out {output.sweep:q}"
        " && python -m mersemi plots features --reasons {params.reasons} --out {output.features:q}"
        ") 2> {log:q}"
