# The feature benchmark (docs/training.md, "Feature benchmark"): the linear probe and the
# MER2024 baseline on every feature set alone and on each combination of `feature_benchmark:`
# (default: the sets train.features names), once per seed of train.seeds, ranked by CV WAF;
# `snakemake feature_benchmark`. One job over every set's merged file: adding or editing a
# set reruns it (and the report, which shows its table). Reads train.smk's TRAIN and TRAIN_CODE.
BENCHMARK = RUN.feature_benchmark
FEATURE_BENCH = RESULTS / "feature_benchmark"


rule feature_benchmark:
    input:
        sets=ALL_FEATURES,
        manifest=MANIFEST,
    output:
        md=FEATURE_BENCH / "table.md",
        csv=report(
            FEATURE_BENCH / "table.csv",
            caption="../report/feature_benchmark.rst",
            category="4. Features",
        ),
        json=FEATURE_BENCH / "table.json",
        plot=report(
            FEATURE_BENCH / "plot.png",
            caption="../report/feature_benchmark.rst",
            category="4. Features",
        ),
    log:
        LOGS / "feature_benchmark.log",
    benchmark:
        BENCH / "feature_benchmark.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        sets=" ".join(f"--set {shell_quote(s)}" for s in BENCHMARK.sets),
        combos=" ".join(f"--combo {shell_quote(c)}" for c in BENCHMARK.combos),
        p=as_json(BENCHMARK.params),
        code=TRAIN_CODE,
        plot_code=code_digest("mersemi.report.plots"),
    shell:
        "(python -m mersemi train feature-bench {params.sets} {params.combos}"
        " --manifest {input.manifest:q} --out-md {output.md:q} --out-csv {output.csv:q}"
        " --out-json {output.json:q} --params {params.p:q}"
        " && python -m mersemi plots benchmark --table {output.json:q} --out {output.plot:q}"
        ") 2> {log:q}"
