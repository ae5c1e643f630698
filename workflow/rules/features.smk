# Features per shard (CLIP-L, Chinese-HuBERT-Large, LLM), then merged per modality.


rule visual:
    input:
        check=CHECKS / "visual.txt",
        shard=SHARD_CSV,
        faces=rules.faces.output[0],
        models=model_inputs("visual"),
    output:
        FEATURES / "visual" / "shard-{shard}.h5",
    log:
        LOGS / "visual" / "shard-{shard}.log",
    benchmark:
        BENCH / "visual" / "shard-{shard}.tsv"
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
        "python -m mersemi extract visual --shard {input.shard:q} --faces {input.faces:q} --out {output:q}"
        " --params {params.p:q} 2> {log:q}"


rule acoustic:
    input:
        check=CHECKS / "acoustic.txt",
        shard=SHARD_CSV,
        audio=rules.audio.output.index,
        models=model_inputs("acoustic"),
    output:
        FEATURES / "acoustic" / "shard-{shard}.h5",
    log:
        LOGS / "acoustic" / "shard-{shard}.log",
    benchmark:
        BENCH / "acoustic" / "shard-{shard}.tsv"
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
        "python -m mersemi extract acoustic --shard {input.shard:q} --audio-index {input.audio:q}"
        " --out {output:q} --params {params.p:q} 2> {log:q}"


rule text:
    input:
        check=CHECKS / "text.txt",
        shard=SHARD_CSV,
        transcripts=rules.transcripts.output[0],
        models=model_inputs("text"),
    output:
        FEATURES / "text" / "shard-{shard}.h5",
    log:
        LOGS / "text" / "shard-{shard}.log",
    benchmark:
        BENCH / "text" / "shard-{shard}.tsv"
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
        "python -m mersemi extract text --shard {input.shard:q} --transcripts {input.transcripts:q}"
        " --out {output:q} --params {params.p:q} 2> {log:q}"


rule merge_features:
    input:
        shards=expand(FEATURES / "{{modality}}" / "shard-{shard}.h5", shard=SHARDS),
        clips=CLIPS,
    output:
        FEATURES / "{modality}.h5",
    log:
        LOGS / "merge" / "{modality}.log",
    wildcard_constraints:
        modality="visual|acoustic|text",
    conda:
        "../../envs/media.yaml"
    params:
        inventory=INVENTORY_DIR,
        code=code_digest("mersemi.commands"),
    shell:
        "python -m mersemi store merge {input.shards:q} --inventory {params.inventory:q}"
        " --out {output:q}"
        " 2> {log:q}"
