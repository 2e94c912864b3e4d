# raworc-spawner — the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck check bench docs clean kubesim

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

## run: start the server on 127.0.0.1:9000 with the local backend and ./data
run: $(STAMP)
	$(BIN)/raworc-spawner serve $(ARGS)

## test: lint, type-check, layering contract and the whole test suite
test: $(STAMP)
	bash scripts/test-prereqs
	$(MAKE) --no-print-directory check
	source scripts/postgres-for-tests && $(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check raworc_spawner kubesim tests benchmarks
	$(BIN)/ruff format --check raworc_spawner kubesim tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

KUBESIM_PORT ?= 6443
KUBESIM_KUBECONFIG ?= kubesim.yaml

## kubesim: run kubesim (a simulated Kubernetes API server) on 127.0.0.1:$(KUBESIM_PORT) and
## write $(KUBESIM_KUBECONFIG); it prints the `export KUBECONFIG=...` line to use. More flags
## through ARGS, e.g. ARGS="--run-processes --namespace raworc-sessions".
kubesim: $(STAMP)
	$(BIN)/python -m kubesim --port $(KUBESIM_PORT) --kubeconfig $(KUBESIM_KUBECONFIG) $(ARGS)

## bench: run the benchmark scenarios (see BENCHMARKS.md)
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

## docs: regenerate docs/configuration.md from the traits' help
docs: $(STAMP)
	$(BIN)/python -m raworc_spawner.docgen > docs/configuration.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
