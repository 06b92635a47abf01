# FaceStats: `make demo` and `make test` each set up .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench ui clean-data clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,detect,celery,openvino]'
	$(BIN)/python -m pip check
	$(BIN)/python -m pip download --quiet --no-deps --dest $(VENV)/fixture-wheels insightface==2.1
	touch $(STAMP)

## demo: generate the demo faces and materialize the whole pipeline through the dagster CLI
demo: $(STAMP)
	$(BIN)/facestats demo

## test: the whole test suite (no network, no GPU)
test: $(STAMP)
	$(BIN)/python -m pytest

## test-fast: core, structure and asset tests only (no CLI/daemon/browser end-to-end tests), about 2 minutes
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e"

## bench: embedding throughput against the roofline and the naive loop
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_embed.py

## ui: the Dagster UI on http://127.0.0.1:3000
ui: $(STAMP)
	FACESTATS_PROJECT=$(CURDIR) DAGSTER_HOME=$(CURDIR)/.dagster_home $(BIN)/dagster dev -w workspace.yaml

clean-data:
	rm -rf data/raw/demo data/raw/edge_cases data/labels data/processed .dagster_home facestats.toml facestats.log

clean: clean-data
	rm -rf $(VENV)
