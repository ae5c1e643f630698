# Audio: 16 kHz mono wav per clip, plus the shard's index CSV (written last).


rule audio:
    input:
        check=CHECKS / "audio.txt",
        shard=SHARD_CSV,
    output:
        index=per_shard(RESULTS / "audio", ".csv"),
        wavs=directory(per_shard(RESULTS / "audio")),
    log:
        per_shard(LOGS / "audio", ".log"),
    benchmark:
        per_shard(BENCH / "audio", ".tsv")
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
