# Audio: 16 kHz mono wav per clip, plus the shard's index CSV (written last).


rule audio:
    input:
        check=CHECKS / "audio.txt",
        shard=SHARD_CSV,
    output:
        index=RESULTS / "audio" / "shard-{shard}.csv",
        wavs=directory(RESULTS / "audio" / "shard-{shard}"),
    log:
        LOGS / "audio" / "shard-{shard}.log",
    benchmark:
        BENCH / "audio" / "shard-{shard}.tsv"
    conda:
        "../../envs/media.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        p=stage_params("audio"),
        code=code_digest("mersemi.extract.audio"),
    shell:
        "python -m mersemi extract audio --shard {input.shard:q} --out {output.index:q} --params {params.p:q}"
        " 2> {log:q}"
