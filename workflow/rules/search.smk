# The MER2024 baseline's search protocol (docs/training.md, "Baseline search"): `trials`
# random trials of MERTools' hyperparameter ranges (one job each), the best by CV WAF
# (best.json), that setting on seeds 0..seeds-1 (one job each), then CV and test WAF mean ±
# std. `snakemake baseline_search`; not part of `all` (about trials + seeds baseline runs).
# The DAG is static: the best-setting jobs read best.json as an input. Reads train.smk's
# TRAIN and FEATURE_FILES.
SEARCH = RUN.baseline_search
SEARCH_DIR = RESULTS / "baseline_search"
SEARCH_CODE = code_digest("mersemi.train.searchcli")
SEARCH_TRIAL = SEARCH_DIR / "trials" / "trial{trial}.json"
SEARCH_BEST = SEARCH_DIR / "best.json"
SEARCH_RUN = SEARCH_DIR / "best" / "seed{search_seed}"


rule baseline_trial:
    input:
        **FEATURE_FILES,
        manifest=MANIFEST,
    output:
        SEARCH_TRIAL,
    log:
        LOGS / "baseline_search/trial{trial}.log",
    benchmark:
        BENCH / "baseline_search/trial{trial}.tsv"
    wildcard_constraints:
        trial=r"\d+",
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    params:
        p=train_params(TRAIN, "baseline"),
        search=as_json(SEARCH.trial_params),
        code=SEARCH_CODE,
    shell:
        "python -m mersemi train baseline-trial --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
        " --manifest {input.manifest:q} --trial {wildcards.trial} --params {params.p:q}"
        " --search {params.search:q} --out {output:q} 2> {log:q}"


rule baseline_search_summary:
    input:
        expand(SEARCH_TRIAL, trial=SEARCH.trials),
    output:
        csv=SEARCH_DIR / "trials.csv",
        best=SEARCH_BEST,
    log:
        LOGS / "baseline_search/summary.log",
    conda:
        "../../envs/train.yaml"
    params:
        search=as_json(SEARCH.params),
        code=SEARCH_CODE,
    shell:
        "python -m mersemi train baseline-search-summary --search {params.search:q}"
        " --trials {input:q} --out-csv {output.csv:q} --out-best {output.best:q} 2> {log:q}"


rule baseline_best:
    input:
        **FEATURE_FILES,
        manifest=MANIFEST,
        best=SEARCH_BEST,
    output:
        metrics=SEARCH_RUN / "metrics.json",
        predictions=SEARCH_RUN / "predictions.csv",
    log:
        LOGS / "baseline_search/best_seed{search_seed}.log",
    benchmark:
        BENCH / "baseline_search/best_seed{search_seed}.tsv"
    wildcard_constraints:
        search_seed=r"\d+",
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=120,
    params:
        p=train_params(TRAIN, "baseline"),
        code=SEARCH_CODE,
    shell:
        "python -m mersemi train baseline-best --acoustic {input.acoustic:q} --visual {input.visual:q} --text {input.text:q}"
        " --manifest {input.manifest:q} --best {input.best:q} --seed {wildcards.search_seed}"
        " --params {params.p:q} --out-metrics {output.metrics:q}"
        " --out-predictions {output.predictions:q} 2> {log:q}"


rule baseline_search:
    input:
        best=SEARCH_BEST,
        trials=SEARCH_DIR / "trials.csv",
        runs=expand(SEARCH_RUN / "metrics.json", search_seed=SEARCH.seeds),
    output:
        json=SEARCH_DIR / "summary.json",
        md=SEARCH_DIR / "summary.md",
    log:
        LOGS / "baseline_search/final.log",
    conda:
        "../../envs/train.yaml"
    params:
        code=SEARCH_CODE,
    shell:
        "python -m mersemi train baseline-search-final --best {input.best:q}"
        " --trials-csv {input.trials:q} --runs {input.runs:q}"
        " --out-json {output.json:q} --out-md {output.md:q} 2> {log:q}"
