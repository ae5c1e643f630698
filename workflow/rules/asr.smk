# ASR: WeNet runtime model over the shard's wavs; provided transcripts win where they exist.


rule asr:
    input:
        **({"provided": DATA["transcript_csv"]} if DATA["transcript_csv"] else {}),
        shard=SHARD_CSV,
        audio=rules.audio.output.index,
        models=model_inputs("asr"),
    output:
        RESULTS / "asr" / "shard-{shard}.csv",
    log:
        "logs/asr/shard-{shard}.log",
    benchmark:
        "benchmarks/runs/asr/shard-{shard}.tsv"
    conda:
        "../../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        p=stage_params(
            "asr", name_col=DATA["columns"]["name"], text_col=DATA["columns"]["text"]
        ),
        provided=lambda wc, input: (
            f"--provided {input.provided}" if "provided" in input.keys() else ""
        ),
        code=code_digest("mersemi.extract.asr"),
    shell:
        "python -m mersemi extract asr --shard {input.shard} --audio-index {input.audio}"
        " {params.provided} --out {output} --params {params.p:q} 2> {log}"
