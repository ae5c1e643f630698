# mersemi: raw MER2024-style videos -> HDF5 features -> MR-CCL -> submission, metrics, report.
# Thin on purpose: load + validate config, include the rule files, define the targets.
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# This checkout's package, whatever `mersemi` the interpreter has installed (rules run it as the package; see common.smk).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from mersemi.workflow import prepare_config

# The demo's config.yaml only when no --configfile is given: Snakemake would merge a user's
# config into it key by key, so every key the user left out would take the demo's value. A
# user's config stands alone on the documented defaults (the schema's, each step's).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# `--config` values typed as a config file types them, then the schema: a violation is one
# line (key path, value, rule) and exit status 2, like the CLI's bad input. validate() then
# fills in the defaults (the schema ships in the package).
prepare_config(config, workflow.config_settings.config)
validate(config, "src/mersemi/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/faces.smk"
include: "workflow/rules/audio.smk"
include: "workflow/rules/asr.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/benchmark.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/report.smk"


# `snakemake --report results/report.zip`: this page, then the report() outputs by category.
report: "workflow/report/workflow.rst"


rule all:
    input:
        rules.submission.output,
        rules.ablations.output,
        rules.report.output,
        rules.plots.output,
        rules.feature_benchmark.output,
        ALL_FEATURES,
