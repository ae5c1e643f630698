# Features per shard (CLIP-L, Chinese-HuBERT-Large, LLM), then merged per modality.


rule visual:
    input:
        check=CHECKS / "visual.txt",
        shard=SHARD_CSV,
        faces=rules.faces.output[0],
        models=model_inputs("visual"),
    output:
        per_shard(FEATURES / "visual", ".h5"),
    log:
        per_shard(LOGS / "visual", ".log"),
    benchmark:
        per_shard(BENCH / "visual", ".tsv")
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
        per_shard(FEATURES / "acoustic", ".h5"),
    log:
        per_shard(LOGS / "acoustic", ".log"),
    benchmark:
        per_shard(BENCH / "acoustic", ".tsv")
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
        per_shard(FEATURES / "text", ".h5"),
    log:
        per_shard(LOGS / "text", ".log"),
    benchmark:
        per_shard(BENCH / "text", ".tsv")
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
        shards=expand(per_shard(FEATURES / "{{modality}}", ".h5"), shard=SHARDS),
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
        inventory=lambda wc, input: Path(input.clips).parent,
        # The shard of each file, in the order of input.shards (same expand over SHARDS).
        ids=SHARDS,
        code=code_digest("mersemi.commands"),
    shell:
        "python -m mersemi store merge {input.shards:q} --inventory {params.inventory:q}"
        " --shard-ids {params.ids:q} --out {output:q}"
        " 2> {log:q}"
