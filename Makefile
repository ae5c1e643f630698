# Two commands: `make run` (set up + run the workflow on config.yaml) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup run test lint format

setup: $(VENV)/.installed

# torch/torchvision are pinned in pyproject.toml to the releases served from local disk here.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,slurm]'
	touch $@

RESULTS := $(shell sed -n 's/^results: *//p' config.yaml)

run: setup
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report $(RESULTS)/report.zip
	@echo
	@echo "submission:  $(RESULTS)/submission.csv"
	@echo "metrics:     $(RESULTS)/train/full/step2/vote/metrics.json"
	@echo "ablations:   $(RESULTS)/ablations/table1.md"
	@echo "report:      $(RESULTS)/report.zip (summary page alone: $(RESULTS)/report.html)"
	@cat $(RESULTS)/ablations/table1.md

lint: setup
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q -p no:cacheprovider tests/test_smk_imports.py  # what .smk files may import
	$(BIN)/python -m mersemi.optiondocs  # the docs' option tables equal the declarations

# OpenFace is built once from shared/fixtures/openface and cached outside the checkout.
test: lint
	$(BIN)/python -m mersemi.fixtures.openface
	$(BIN)/pytest

format: setup
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/snakefmt Snakefile workflow/rules
