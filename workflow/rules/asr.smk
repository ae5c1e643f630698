# ASR: WeNet runtime model over the shard's wavs, every decoding mode; the provided
# transcripts are merged in by their own rule, so editing them reruns no decoding.


rule asr:
    input:
        check=CHECKS / "asr.txt",
        shard=SHARD_CSV,
        audio=rules.audio.output.index,
        models=model_inputs("asr"),
    output:
        csv=per_shard(RESULTS / "asr", ".csv"),
        info=per_shard(RESULTS / "asr", ".decode.json"),
    log:
        per_shard(LOGS / "asr", ".log"),
    benchmark:
        per_shard(BENCH / "asr", ".tsv")
    conda:
        "../../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    params:
        p=stage_params("asr"),
        # Every mode only where the transcripts rule has references to score them against.
        modes="all" if DATA["transcript_csv"] else "decoding",
        code=code_digest("mersemi.extract.asr.decode"),
    shell:
        "python -m mersemi extract asr --shard {input.shard:q} --audio-index {input.audio:q}"
        " --modes {params.modes} --out {output.csv:q} --params {params.p:q} 2> {log:q}"


# Transcripts of a shard: provided where given, else the ASR text; and the CER of the ASR.
rule transcripts:
    input:
        **({"provided": TRANSCRIPTS_CSV} if DATA["transcript_csv"] else {}),
        shard=SHARD_CSV,
        asr=rules.asr.output.csv,
        info=rules.asr.output.info,
    output:
        per_shard(RESULTS / "transcripts", ".csv"),
    log:
        per_shard(LOGS / "transcripts", ".log"),
    benchmark:
        per_shard(BENCH / "transcripts", ".tsv")
    conda:
        "../../envs/media.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        p=stage_params("transcripts"),
        # The inventory's per-shard transcript files have columns name,text.
        provided=lambda wc, input: (
            f"--provided {shell_quote(input.provided)} --columns name,text"
            if "provided" in input.keys()
            else ""
        ),
        code=code_digest("mersemi.extract.asr.merge"),
    shell:
        "python -m mersemi extract transcripts --shard {input.shard:q} --asr {input.asr:q}"
        " {params.provided} --out {output:q} --params {params.p:q} 2> {log:q}"
