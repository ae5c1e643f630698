# Inputs: the demo dataset (when configured) and the manifest with its shard files.


if DATA["demo"]:

    rule demo:
        output:
            labeled=directory(DATA["labeled_dir"]),
            unlabeled=directory(DATA["unlabeled_dir"]),
            labels=DATA["label_csv"],
            test_labels=DATA["test_label_csv"],
            transcripts=DATA["transcript_csv"],
            truth=Path(DATA["label_csv"]).parent / "demo_truth.csv",
        log:
            "logs/demo.log",
        conda:
            "../../envs/media.yaml"
        params:
            out=lambda wc, output: Path(output.labels).parent,
            seed=DATA["demo_seed"],
            code=code_digest("mersemi.demo"),
        shell:
            "python -m mersemi demo --out {params.out} --seed {params.seed} 2> {log}"


rule manifest:
    input:
        **MANIFEST_INPUTS,
    output:
        manifest=MANIFEST,
        shards=expand(SHARD_CSV, shard=SHARDS),
    log:
        "logs/manifest.log",
    conda:
        "../../envs/media.yaml"
    params:
        optional=" ".join(
            f"--{flag} {DATA[key]}"
            for key, flag in OPTIONAL_INPUTS.items()
            if DATA[key]
        ),
        cols=DATA["columns"],
        n=config["shards"],
        shard_dir=RESULTS / "shards",
        code=code_digest("mersemi.commands"),
    shell:
        "python -m mersemi manifest --labeled-dir {input.labeled} --label-csv {input.labels}"
        " --unlabeled-dir {input.unlabeled} {params.optional} --name-col {params.cols[name]}"
        " --label-col {params.cols[label]} --text-col {params.cols[text]} --shards {params.n}"
        " --out {output.manifest} --shard-dir {params.shard_dir} 2> {log}"


if MODELS["tiny"]:

    rule tiny_models:
        output:
            TINY_MODELS,
        log:
            "logs/tiny_models.log",
        conda:
            "../../envs/models.yaml"
        params:
            out=lambda wc, output: Path(output[0]).parent,
            code=code_digest("mersemi.tiny.cli"),
        shell:
            "python -m mersemi models tiny --out {params.out} 2> {log}"
