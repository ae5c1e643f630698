# mersemi: raw MER2024-style videos -> HDF5 features -> MR-CCL -> submission, metrics, report.
# Thin on purpose: load + validate config, include the rule files, define the targets.
from snakemake.utils import min_version, validate

min_version("9.0")


# The demo's config.yaml only when no --configfile is given: Snakemake would merge a user's
# config into it key by key, so every key the user left out would take the demo's value. A
# user's config stands alone on the documented defaults (the schema's, each step's).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# The schema ships in the package (mersemi.checkmodels validates with the same file).
validate(config, "src/mersemi/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/faces.smk"
include: "workflow/rules/audio.smk"
include: "workflow/rules/asr.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


# `snakemake --report results/report.zip`: this page, then the report() outputs by category.
report: "workflow/report/workflow.rst"


rule all:
    input:
        rules.submission.output,
        rules.ablations.output,
        rules.report.output,
        rules.plots.output,
