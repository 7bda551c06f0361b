# hk8s — everything a fresh clone needs, from a bare python3.
#   make demo   start the simulator and create a cluster in it (README command 1)
#   make test   lint, type check, unit and e2e tests (README command 2; CI runs exactly this)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# uv installs the venv from uv.lock (every package pinned with its hashes); uv itself is
# bootstrapped with pip --require-hashes from tools/uv-requirements.txt into its own small venv.
UV_DIR := .tools/uv
UV     := $(UV_DIR)/bin/uv
UV_RUN := UV_PYTHON_DOWNLOADS=never $(UV)
# Upstream Go tools and oracles: pinned in committed go.mod/go.sum (tools/go, ...), built by go
# into its own caches outside the work tree (GOCACHE, GOMODCACHE).
GO     ?= go
PROTO_SRC := $(shell find protos -name '*.proto' 2>/dev/null | sort)

.DEFAULT_GOAL := help
.PHONY: help venv pyc lock lock-upgrade test lint types unit e2e oracles chaos fmt bench protos protos-check demo clean kube helm

help:
	@echo "make demo    start the simulator and create a demo cluster in it"
	@echo "make test    lint + type check + unit + e2e tests (what CI runs)"
	@echo "make lint    ruff, ruff format --check, mypy --strict, import-linter, stale protos"
	@echo "make kube    build the real Kubernetes control plane and Helm the simulated world runs (cached)"
	@echo "make oracles build the upstream oracles (Talos machinery, age, Helm; Go) and run tests/oracles"
	@echo "make fmt     format and autofix"
	@echo "make bench   print benchmark figures"
	@echo "make chaos   seeded kills, faults and concurrent operators (SEED=1 ROUNDS=4)"
	@echo "make protos  regenerate src/hk8s/talosapi from protos/"
	@echo "make lock    re-resolve uv.lock after a pyproject.toml change (other pins kept)"
	@echo "make lock-upgrade  move every locked package to its newest allowed version"

$(UV): tools/uv-requirements.txt
	@test -x $(UV_DIR)/bin/python || $(PYTHON) -m venv $(UV_DIR)
	$(UV_DIR)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--require-hashes -r tools/uv-requirements.txt
	@touch $@

# Installs exactly uv.lock (--locked: refuse a lock that no longer matches pyproject.toml).
# Dependencies first, then hk8s itself, built by the locked hatchling already in the venv.
# A no-op when the venv is newer than the lock. --compile-bytecode: see pyc below.
$(STAMP): $(UV) pyproject.toml uv.lock
	$(UV_RUN) sync --locked --compile-bytecode --python $(PYTHON) --no-install-project
	$(UV_RUN) sync --locked --compile-bytecode --python $(PYTHON)
	@touch $@

# Bytecode written ahead of the runs. Where PYTHONDONTWRITEBYTECODE is set (this machine and
# many CI images set it), Python never caches what it compiles, so every process compiled each
# module it imports from source: 0.6 s of CPU for each of the e2e tests' hundreds of hk8s runs
# (the kubernetes client alone is 1,900 modules), and more for each pytest worker. compileall
# writes regardless, and only what changed (a no-op run takes about 0.4 s).
pyc: $(STAMP)
	@$(BIN)/python -m compileall -q $(VENV)/lib src tests bench tools

venv: $(STAMP)

lock: $(UV)
	$(UV_RUN) lock

lock-upgrade: $(UV)
	$(UV_RUN) lock --upgrade
	$(UV_RUN) pip compile tools/uv-requirements.in --generate-hashes --universal --quiet \
		-o tools/uv-requirements.txt

test: lint unit e2e oracles

lint: $(STAMP) protos-check
	$(UV_RUN) lock --check
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(GO) -C tools/go tool actionlint -shellcheck $(CURDIR)/$(BIN)/shellcheck $(CURDIR)/.github/workflows/*.yml

types: $(STAMP)
	$(BIN)/mypy

# Two workers, one per core: the unit tests compute (2 min 35 s in one process, 1 min 20 s in two).
UNIT_WORKERS ?= 2
unit: pyc
	$(BIN)/pytest tests/unit -n $(UNIT_WORKERS)

# The e2e tests wait more than they compute (the controllers' wall-time periods, the simulated
# clouds' scaled delays): three workers keep two cores busy. Each world claims its own loopback
# block (hk8s.sim.world._blocks), so worlds side by side never answer each other. A file's tests
# stay on one worker: a module may share one created cluster among its tests (--dist loadgroup
# would be finer, but pytest 9.2 dropped the node-id suffix it groups by: pytest-xdist #1386).
E2E_WORKERS ?= 3
e2e: pyc kube
	$(BIN)/pytest tests/e2e -n $(E2E_WORKERS) --dist loadfile

# Reports converged / duplicates / orphans / leftovers over the rounds; exit 1 unless all 0.
SEED ?= 1
ROUNDS ?= 4
chaos: pyc kube
	PYTHONPATH=tests $(BIN)/python tests/chaos.py --seed $(SEED) --rounds $(ROUNDS)

# Upstream oracles: Talos' machinery at each supported minor (tests/oracles/talos/v1.*), built
# by go into ORACLES with its default caches (a no-op when nothing changed), then the tests
# that compare hk8s with them.
ORACLES ?= $(HOME)/.cache/hk8s/oracles
TALOS_ORACLES := $(patsubst tests/oracles/talos/%/go.mod,$(ORACLES)/talos-%,$(wildcard tests/oracles/talos/v1.*/go.mod))

$(ORACLES)/talos-%: tests/oracles/talos/%/go.mod tests/oracles/talos/%/go.sum $(wildcard tests/oracles/talos/*.go)
	@mkdir -p $(ORACLES)
	$(GO) -C tests/oracles/talos/$* build -o $@ .

# filippo.io/age, the judge of hk8s' own age code (tests/oracles/age).
$(ORACLES)/age-oracle: tests/oracles/age/go.mod tests/oracles/age/go.sum tests/oracles/age/main.go
	@mkdir -p $(ORACLES)
	$(GO) -C tests/oracles/age build -o $@ .

# Helm's release storage, the judge of how hk8s and the simulator read and write Helm's release
# Secrets (tests/oracles/charts; the charts there are judged with the world's Helm, make helm).
$(ORACLES)/helm-release-oracle: tests/oracles/charts/go.mod tests/oracles/charts/go.sum tests/oracles/charts/main.go
	@mkdir -p $(ORACLES)
	$(GO) -C tests/oracles/charts build -o $@ .

oracles: pyc helm $(TALOS_ORACLES) $(ORACLES)/age-oracle $(ORACLES)/helm-release-oracle
	HK8S_ORACLES=$(ORACLES) $(BIN)/pytest tests/oracles

# The simulated world's real Kubernetes control plane (etcd, kube-apiserver, controller manager,
# scheduler) at the release tools/kube/go.mod pins, built from the Go module proxy into
# ~/.cache/hk8s/kube/<release>; a no-op once built from the same go.mod/go.sum.
kube: helm
	$(BIN)/python tools/kube_build.py

# The Helm the world's addon Jobs run, and the sources of the charts it installs with it
# (tools/helm, tools/helm/charts), into ~/.cache/hk8s/helm/<release>; a no-op once built.
helm: $(STAMP)
	$(BIN)/python tools/helm_build.py

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench tools
	$(BIN)/ruff format src tests bench tools

bench: pyc kube
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

protos: $(STAMP)
	$(BIN)/python tools/protos.py generate

# Fails when the checked-in generated code does not match protos/.
protos-check: $(STAMP)
	$(BIN)/python tools/protos.py check

demo: pyc kube
	$(BIN)/python -m hk8s.sim.demo

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache build dist
