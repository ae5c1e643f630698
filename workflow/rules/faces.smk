# Faces: decode frames, detect and align the face, keep the crops of each shard.


rule faces:
    input:
        check=CHECKS / "faces.txt",
        shard=SHARD_CSV,
    output:
        per_shard(RESULTS / "faces", ".h5"),
    log:
        per_shard(LOGS / "faces", ".log"),
    benchmark:
        per_shard(BENCH / "faces", ".tsv")
    conda:
        "../../envs/media.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        p=stage_params("faces"),
        code=code_digest("mersemi.extract.faces"),
    shell:
        "python -m mersemi extract faces --shard {input.shard:q} --out {output:q} --params {params.p:q}"
        " 2> {log:q}"
