# ASR: WeNet runtime model over the shard's wavs; provided transcripts win where they exist.


rule asr:
    input:
        **({"provided": TRANSCRIPTS_CSV} if DATA["transcript_csv"] else {}),
        check=CHECKS / "asr.txt",
        shard=SHARD_CSV,
        audio=rules.audio.output.index,
        models=model_inputs("asr"),
    output:
        RESULTS / "asr" / "shard-{shard}.csv",
    log:
        LOGS / "asr" / "shard-{shard}.log",
    benchmark:
        BENCH / "asr" / "shard-{shard}.tsv"
    conda:
        "../../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        # The inventory's per-shard transcript files have columns name,text.
        p=stage_params("asr", name_col="name", text_col="text"),
        provided=lambda wc, input: (
            f"--provided {shell_quote(input.provided)}"
            if "provided" in input.keys()
            else ""
        ),
        code=code_digest("mersemi.extract.asr"),
    shell:
        "python -m mersemi extract asr --shard {input.shard:q} --audio-index {input.audio:q}"
        " {params.provided} --out {output:q} --params {params.p:q} 2> {log:q}"
