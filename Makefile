# Two commands set everything up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CYPHER_LINT := tools/cypher-lint

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: test lint typecheck unit venv clean serve lint-cypher

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned, so nothing later resolves it to a CUDA build
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The service on the embedded default (SQLite in ./data, or HIPPOGRAPH_DATA_DIR).
serve: $(STAMP)
	$(VENV)/bin/hippograph serve $(SERVE_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy graph embeddings lifecycle api

unit: $(STAMP) browser $(CYPHER_LINT)/node_modules/.installed
	$(VENV)/bin/pytest

test: lint typecheck lint-cypher unit

# Neo4j's own Cypher front end (npm @neo4j-cypher/language-support, pinned in
# tools/cypher-lint/package-lock.json, installed there, never globally) checks every
# statement of graph/neo4j_store.py and the saved Browser queries.
$(CYPHER_LINT)/node_modules/.installed: $(CYPHER_LINT)/package.json $(CYPHER_LINT)/package-lock.json
	@command -v npm >/dev/null || { echo "need node and npm on PATH for the Cypher linter"; exit 1; }
	cd $(CYPHER_LINT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint-cypher: $(STAMP) $(CYPHER_LINT)/node_modules/.installed
	$(PY) tools/lint_cypher.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache $(CYPHER_LINT)/node_modules

.PHONY: browser vendor-graphiql vendor-graphiql-check

# Headless Chromium for the GraphiQL browser test (tests/api/test_graphiql.py skips
# without it): installed from Debian's packages when missing, only as root with apt-get.
browser:
	@if command -v chromium >/dev/null 2>&1; then \
		echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "chromium missing, and installing it needs root and apt-get: the browser test will skip"; \
	fi

# Re-vendor GraphiQL into api/static/graphiql/ (needs npm; building and testing do not).
vendor-graphiql:
	$(PYTHON) tools/vendor_graphiql.py

# Re-fetch the pinned packages and fail if api/static/graphiql/ differs from them.
vendor-graphiql-check:
	$(PYTHON) tools/vendor_graphiql.py --check
