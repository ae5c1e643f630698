# mersemi: raw MER2024-style videos -> HDF5 features -> MR-CCL -> submission, metrics, report.
# Thin on purpose: load + validate config, include the rule files, define the targets.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"


rule all:
    input:
        MANIFEST,
