# Every environment installs from a lock, so a new release elsewhere cannot change what runs:
# uv.lock for the gateway, its tests and the benchmark (newest versions of the declared range),
# requirements/lowest.txt for the floor of that range, and requirements/uv.txt for uv itself.
# `make lock` refreshes all three. Each target sets itself up when its environment is missing or stale.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
FLOOR := .venv-lowest
HOST ?= 127.0.0.1
PORT ?= 8000

# uv uses the machine's Python, never one it downloads, and syncs into $(VENV).
export UV_PYTHON := $(shell command -v $(PYTHON))
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
SYNC := $(UV) sync --frozen --inexact --quiet

JS := clients/js

.PHONY: run test test-floor lint typecheck test-js lock clean bench

$(UV): requirements/uv.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --require-hashes -r requirements/uv.txt
	touch $@

$(VENV)/.installed: uv.lock | $(UV)
	$(SYNC)
	touch $@

$(VENV)/.installed-dev: uv.lock | $(UV)
	$(SYNC) --extra dev
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: uv.lock | $(UV)
	$(SYNC) --extra dev --extra bench
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

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

# The floor of the declared range: the lowest version of every direct dependency.
$(FLOOR)/.installed: requirements/lowest.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python $(UV_PYTHON) $(FLOOR)
	$(UV) pip sync --quiet --python $(FLOOR)/bin/python --require-hashes requirements/lowest.txt
	$(UV) pip install --quiet --python $(FLOOR)/bin/python --no-deps -e .
	touch $@

# The WebSocket and SSE suites at the floor (README: Dependencies); the full suite runs at the newest.
FLOOR_SUITES := tests/server/test_ws.py tests/server/test_http.py tests/server/test_fastpath.py
test-floor: $(FLOOR)/.installed
	$(FLOOR)/bin/python -m pytest -q -p no:cacheprovider $(FLOOR_SUITES)

# The `ai` package (the AI SDK) on Node 22 from npm, for the AI SDK transports' tests.
AI_SDK_NODE := tests/ai_sdk_node
$(AI_SDK_NODE)/node_modules/.installed: $(AI_SDK_NODE)/package-lock.json
	cd $(AI_SDK_NODE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: lint typecheck test-js $(OPENAI_NODE)/node_modules/.installed $(AI_SDK_NODE)/node_modules/.installed test-floor
	$(BIN)/python -m pytest --cov --cov-report=term -q

lock: | $(UV)
	$(UV) lock --upgrade
	$(UV) pip compile --quiet --upgrade --generate-hashes --no-header --python-version 3.11 \
		requirements/uv.in -o requirements/uv.txt
	$(UV) pip compile --quiet --upgrade --generate-hashes --no-header --python-version 3.11 \
		--resolution lowest-direct --extra dev pyproject.toml -o requirements/lowest.txt

clean:
	rm -rf $(VENV) $(TOOLS) $(FLOOR) $(JS)/node_modules $(OPENAI_NODE)/node_modules $(AI_SDK_NODE)/node_modules \
		.coverage .mypy_cache .ruff_cache .pytest_cache

# The benchmark (docs/benchmarks.md): a few minutes; `make bench BENCH_ARGS=--quick` for a smoke run.
bench: $(VENV)/.installed-bench $(AI_SDK_NODE)/node_modules/.installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)
