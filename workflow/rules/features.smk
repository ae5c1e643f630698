# Feature sets (config `features:`; default: visual, acoustic, text from `extract:`): each set
# is extracted per shard by its modality's rule (`{set}` wildcard: the sets of that modality),
# with the set's params, then merged into features/<set>.h5. Training reads the sets that
# `train.features` names (train.smk). ASR and the transcripts are shared by every text set.
# Every set's merged file (rule all): adding a set to a finished run extracts that set only.
ALL_FEATURES = [FEATURE_SETS.merged(name) for name in FEATURE_SETS.names()]


rule visual:
    input:
        check=FEATURE_SETS.check,
        shard=SHARD_CSV,
        faces=rules.faces.output[0],
        models=lambda wc: model_inputs(FEATURE_SETS.section(wc.set)),
    output:
        per_shard(FEATURES / "{set}", ".h5"),
    log:
        per_shard(LOGS / "{set}", ".log"),
    benchmark:
        per_shard(BENCH / "{set}", ".tsv")
    wildcard_constraints:
        set=FEATURE_SETS.wildcard("visual"),
    conda:
        "../../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        p=lambda wc: as_json(FEATURE_SETS.section(wc.set)),
        code=code_digest("mersemi.extract.visual"),
    shell:
        "python -m mersemi extract visual --shard {input.shard:q} --faces {input.faces:q} --out {output:q}"
        " --params {params.p:q} 2> {log:q}"


rule acoustic:
    input:
        check=FEATURE_SETS.check,
        shard=SHARD_CSV,
        audio=rules.audio.output.index,
        models=lambda wc: model_inputs(FEATURE_SETS.section(wc.set)),
    output:
        per_shard(FEATURES / "{set}", ".h5"),
    log:
        per_shard(LOGS / "{set}", ".log"),
    benchmark:
        per_shard(BENCH / "{set}", ".tsv")
    wildcard_constraints:
        set=FEATURE_SETS.wildcard("acoustic"),
    conda:
        "../../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    params:
        p=lambda wc: as_json(FEATURE_SETS.section(wc.set)),
        code=code_digest("mersemi.extract.acoustic"),
    shell:
        "python -m mersemi extract acoustic --shard {input.shard:q} --audio-index {input.audio:q}"
        " --out {output:q} --params {params.p:q} 2> {log:q}"


rule text:
    input:
        check=FEATURE_SETS.check,
        shard=SHARD_CSV,
        transcripts=rules.transcripts.output[0],
        models=lambda wc: model_inputs(FEATURE_SETS.section(wc.set)),
    output:
        per_shard(FEATURES / "{set}", ".h5"),
    log:
        per_shard(LOGS / "{set}", ".log"),
    benchmark:
        per_shard(BENCH / "{set}", ".tsv")
    wildcard_constraints:
        set=FEATURE_SETS.wildcard("text"),
    conda:
        "../../envs/models.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=40000,
        runtime=120,
    params:
        p=lambda wc: as_json(FEATURE_SETS.section(wc.set)),
        code=code_digest("mersemi.extract.text"),
    shell:
        "python -m mersemi extract text --shard {input.shard:q} --transcripts {input.transcripts:q}"
        " --out {output:q} --params {params.p:q} 2> {log:q}"


rule merge_features:
    input:
        shards=expand(per_shard(FEATURES / "{{set}}", ".h5"), shard=SHARDS),
        clips=CLIPS,
    output:
        FEATURES / "{set}.h5",
    log:
        LOGS / "merge" / "{set}.log",
    wildcard_constraints:
        set=FEATURE_SETS.wildcard(),
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


# `snakemake features`: every set's merged file and nothing after it (no training), e.g. to
# compare feature sets first (config.zoo.yaml, docs/demo.md).
rule features:
    input:
        ALL_FEATURES,
    localrule: True
