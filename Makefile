# Each target sets itself up: a .venv is created and the package installed when missing or stale.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

JS := clients/js

.PHONY: run test lint typecheck test-js clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/tokenwire serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

$(JS)/node_modules/.installed: $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test-js: $(JS)/node_modules/.installed $(VENV)/.installed-dev
	cd $(JS) && TOKENWIRE_PYTHON=$(abspath $(BIN))/python npm test
	cd $(JS) && npm run --silent typecheck

# The official openai npm package, for the OpenAI-compatible API's tests.
OPENAI_NODE := tests/openai_node
$(OPENAI_NODE)/node_modules/.installed: $(OPENAI_NODE)/package-lock.json
	cd $(OPENAI_NODE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: lint typecheck test-js $(OPENAI_NODE)/node_modules/.installed
	$(BIN)/python -m pytest --cov --cov-report=term -q

clean:
	rm -rf $(VENV) $(JS)/node_modules $(OPENAI_NODE)/node_modules .coverage .mypy_cache .ruff_cache .pytest_cache

# The benchmark (docs/benchmarks.md): a few minutes; `make bench BENCH_ARGS=--quick` for a smoke run.
.PHONY: bench
$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.run $(BENCH_ARGS)
