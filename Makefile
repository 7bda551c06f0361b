# hk8s — everything a fresh clone needs, from a bare python3.
#   make demo   start the simulator and create a cluster in it (README command 1)
#   make test   lint, type check, unit and e2e tests (README command 2; CI runs exactly this)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROTO_SRC := $(shell find protos -name '*.proto' 2>/dev/null | sort)

.DEFAULT_GOAL := help
.PHONY: help venv test lint types unit e2e fmt bench protos protos-check demo clean

help:
	@echo "make demo    start the simulator and create a demo cluster in it"
	@echo "make test    lint + type check + unit + e2e tests (what CI runs)"
	@echo "make lint    ruff, ruff format --check, mypy --strict, import-linter, stale protos"
	@echo "make fmt     format and autofix"
	@echo "make bench   print benchmark figures"
	@echo "make protos  regenerate src/hk8s/talosapi from protos/"

# The venv is rebuilt only when pyproject.toml changes: a no-op when up to date.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(STAMP)

test: lint unit e2e

lint: $(STAMP) protos-check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

protos: $(STAMP)
	$(BIN)/python tools/protos.py generate

# Fails when the checked-in generated code does not match protos/.
protos-check: $(STAMP)
	$(BIN)/python tools/protos.py check

demo: $(STAMP)
	$(BIN)/python -m hk8s.sim.demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
