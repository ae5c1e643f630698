# Features per shard (CLIP-L, Chinese-HuBERT-Large, LLM), then merged per modality.


rule visual:
    input:
        shard=SHARD_CSV,
        faces=rules.faces.output[0],
        models=model_inputs("visual"),
    output:
        FEATURES / "visual" / "shard-{shard}.h5",
    log:
        "logs/visual/shard-{shard}.log",
    benchmark:
        "benchmarks/runs/visual/shard-{shard}.tsv"
    conda:
        "../../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        p=stage_params("visual"),
        code=code_digest("mersemi.extract.visual"),
    shell:
        "python -m mersemi extract visual --shard {input.shard} --faces {input.faces} --out {output}"
        " --params {params.p:q} 2> {log}"


rule acoustic:
    input:
        shard=SHARD_CSV,
        audio=rules.audio.output.index,
        models=model_inputs("acoustic"),
    output:
        FEATURES / "acoustic" / "shard-{shard}.h5",
    log:
        "logs/acoustic/shard-{shard}.log",
    benchmark:
        "benchmarks/runs/acoustic/shard-{shard}.tsv"
    conda:
        "../../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        p=stage_params("acoustic"),
        code=code_digest("mersemi.extract.acoustic"),
    shell:
        "python -m mersemi extract acoustic --shard {input.shard} --audio-index {input.audio}"
        " --out {output} --params {params.p:q} 2> {log}"


rule text:
    input:
        shard=SHARD_CSV,
        transcripts=rules.asr.output[0],
        models=model_inputs("text"),
    output:
        FEATURES / "text" / "shard-{shard}.h5",
    log:
        "logs/text/shard-{shard}.log",
    benchmark:
        "benchmarks/runs/text/shard-{shard}.tsv"
    conda:
        "../../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=40000,
        runtime=120,
    params:
        p=stage_params("text"),
        code=code_digest("mersemi.extract.text"),
    shell:
        "python -m mersemi extract text --shard {input.shard} --transcripts {input.transcripts}"
        " --out {output} --params {params.p:q} 2> {log}"


rule merge_features:
    input:
        shards=expand(FEATURES / "{{modality}}" / "shard-{shard}.h5", shard=SHARDS),
        manifest=MANIFEST,
    output:
        FEATURES / "{modality}.h5",
    log:
        "logs/merge/{modality}.log",
    wildcard_constraints:
        modality="visual|acoustic|text",
    conda:
        "../../envs/media.yaml"
    params:
        code=code_digest("mersemi.commands"),
    shell:
        "python -m mersemi store merge {input.shards} --manifest {input.manifest} --out {output}"
        " 2> {log}"
