# Inputs: the manifest (the inventory's clips with their split and label) and the tiny models.
# The inventory itself is updated when the workflow loads (mersemi.workflow.load_run): labels
# are not part of it, so a label edit reaches training only.
from mersemi.workflow import STAGES


rule manifest:
    input:
        **({"test_labels": DATA["test_label_csv"]} if DATA["test_label_csv"] else {}),
        clips=CLIPS,
        labels=DATA["label_csv"],
    output:
        MANIFEST,
    log:
        LOGS / "manifest.log",
    conda:
        "../../envs/media.yaml"
    params:
        inventory=lambda wc, input: Path(input.clips).parent,
        labels=lambda wc, input: (
            f"--label-csv {shell_quote(input.labels)}"
            if "labels" in input.keys()
            else ""
        ),
        test=lambda wc, input: (
            f"--test-label-csv {shell_quote(input.test_labels)}"
            if "test_labels" in input.keys()
            else ""
        ),
        cols=DATA["columns"],
        code=code_digest("mersemi.commands"),
    shell:
        "python -m mersemi manifest --inventory {params.inventory:q} {params.labels}"
        " {params.test} --name-col {params.cols[name]:q} --label-col {params.cols[label]:q}"
        " --out {output:q} 2> {log:q}"


# The manifest without labels, for pretraining: a label fix does not rerun it.
use rule manifest as splits with:
    input:
        **({"test_labels": DATA["test_label_csv"]} if DATA["test_label_csv"] else {}),
        clips=CLIPS,
    output:
        SPLITS,
    log:
        LOGS / "splits.log",


if MODELS["tiny"]:

    rule tiny_models:
        output:
            TINY_MODELS,
        log:
            LOGS / "tiny_models.log",
        conda:
            "../../envs/models.yaml"
        params:
            out=lambda wc, output: Path(output[0]).parent,
            code=code_digest("mersemi.demo.tiny.cli"),
        shell:
            "python -m mersemi models tiny --out {params.out:q} 2> {log:q}"


# Before any extraction job: can each stage, and each feature set, load its model and tools?
# Runs on the login node (localrule) and prints its table to the terminal as well as the log.
# checks/<stage>.txt, and checks/<modality>/<set>.txt for a set not named after its modality
# (`{set_suffix}`: mersemi.featuresets.FeatureSets).
rule check_models:
    input:
        lambda wc: model_inputs(FEATURE_SETS.check_section(wc)),
    output:
        CHECKS / "{stage}{set_suffix}.txt",
    log:
        LOGS / "checks" / "{stage}{set_suffix}.log",
    wildcard_constraints:
        stage="|".join(STAGES),
        set_suffix=FEATURE_SETS.check_wildcard,
    priority: 100
    localrule: True
    conda:
        "../../envs/models.yaml"
    params:
        p=lambda wc: as_json(FEATURE_SETS.check_section(wc)),
        code=lambda wc: code_digest(
            "mersemi.checkmodels", f"mersemi.extract.{wc.stage}"
        ),
    shell:
        "python -m mersemi check-models --stage {wildcards.stage} --params {params.p:q}"
        " --out {output:q} 2>&1 | tee {log:q}"
