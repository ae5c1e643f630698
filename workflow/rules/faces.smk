# Faces: decode frames, detect and align the face, keep the crops of each shard.


rule faces:
    input:
        shard=SHARD_CSV,
    output:
        RESULTS / "faces" / "shard-{shard}.h5",
    log:
        "logs/faces/shard-{shard}.log",
    benchmark:
        "benchmarks/runs/faces/shard-{shard}.tsv"
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
        "python -m mersemi extract faces --shard {input.shard} --out {output} --params {params.p:q}"
        " 2> {log}"
