# Two commands set everything up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CYPHER_LINT := tools/cypher-lint
NEO4J_TOOL := tools/neo4j
NEO4J_BUILT := $(NEO4J_TOOL)/target/.built
NEO4J_DATA_DIR ?= .neo4j
NEO4J_PASSWORD ?= hippograph
NEO4J_BOLT_PORT ?= 7687
NEO4J_HTTP_PORT ?= 7474
NEO4J_HEAP ?= 1g
NEO4J_PAGECACHE ?= 512m

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: test lint typecheck licences unit venv clean serve lint-cypher neo4j neo4j-build neo4j-for-tests serve-neo4j

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned (PyPI's Linux wheel of it is the CUDA build, with NVIDIA's wheels)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The service on the embedded default (SQLite in ./data, or HIPPOGRAPH_DATA_DIR).
serve: $(STAMP)
	$(VENV)/bin/hippograph serve $(SERVE_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy reads the installed names (hippograph.graph, ...) through a tree of links to the
# card's folders (.typecheck/, ignored): setuptools maps them with package-dir, which an
# editable install serves through an import hook mypy does not run.
typecheck: $(STAMP)
	rm -rf .typecheck && mkdir -p .typecheck/hippograph
	for p in graph embeddings lifecycle api; do ln -s ../../$$p .typecheck/hippograph/$$p; done
	for f in hippograph/*.py; do ln -s ../../$$f .typecheck/hippograph/; done
	MYPYPATH=.typecheck $(VENV)/bin/mypy -p hippograph

# pytest beside a real Neo4j 5.26 server (tests/neo4j_server.py starts one on free
# loopback ports over a temporary directory, sets NEO4J_URI for the run, stops it after).
unit: $(STAMP) browser $(CYPHER_LINT)/node_modules/.installed neo4j-for-tests
	$(PY) tests/neo4j_server.py -- $(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck lint-cypher licences unit

# Fails on a GPL/AGPL (or unstated) licence in the runtime closure of the installed
# hippograph (tools/check_licences.py prints the table; extras are not followed).
licences: $(STAMP)
	$(PY) tools/check_licences.py

# Neo4j's own Cypher front end (npm @neo4j-cypher/language-support, pinned in
# tools/cypher-lint/package-lock.json, installed there, never globally) checks every
# statement of graph/neo4j_statements.py and graph/neo4j_read_statements.py, and the saved
# Browser queries.
$(CYPHER_LINT)/node_modules/.installed: $(CYPHER_LINT)/package.json $(CYPHER_LINT)/package-lock.json
	@command -v npm >/dev/null || { echo "need node and npm on PATH for the Cypher linter"; exit 1; }
	cd $(CYPHER_LINT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint-cypher: $(STAMP) $(CYPHER_LINT)/node_modules/.installed
	$(PY) tools/lint_cypher.py

clean:
	rm -rf $(VENV) .typecheck .mypy_cache .pytest_cache .ruff_cache $(CYPHER_LINT)/node_modules \
		$(NEO4J_TOOL)/target $(NEO4J_TOOL)/.m2

# -- Neo4j ----------------------------------------------------------------------------
# A real Neo4j Community 5.26 server (tools/neo4j: pinned jars from Maven Central, cached
# in tools/neo4j/.m2; one launcher class) with Neo4j Browser at /browser. `make neo4j`
# runs it in the foreground on NEO4J_DATA_DIR (kept between runs) with auth on: user
# neo4j, password NEO4J_PASSWORD. `make serve-neo4j` serves hippograph against it.

$(NEO4J_BUILT): $(NEO4J_TOOL)/pom.xml $(shell find $(NEO4J_TOOL)/src -name '*.java')
	@command -v mvn >/dev/null || { echo "need Maven (mvn) and a JDK 17+ for the Neo4j server"; exit 1; }
	mvn -q -B -f $(NEO4J_TOOL)/pom.xml -Dmaven.repo.local=$(CURDIR)/$(NEO4J_TOOL)/.m2 package
	touch $@

neo4j-build: $(NEO4J_BUILT)

# Builds the server when Java and Maven are here; without them the Neo4j half of the
# suite skips and says why.
neo4j-for-tests:
	@if command -v java >/dev/null && command -v mvn >/dev/null; then \
		$(MAKE) --no-print-directory neo4j-build; \
	else echo "java or mvn missing: the Neo4j half of the suite will skip"; fi

neo4j: $(NEO4J_BUILT)
	NEO4J_DATA_DIR='$(NEO4J_DATA_DIR)' NEO4J_PASSWORD='$(NEO4J_PASSWORD)' \
	NEO4J_BOLT_PORT=$(NEO4J_BOLT_PORT) NEO4J_HTTP_PORT=$(NEO4J_HTTP_PORT) \
	NEO4J_PAGECACHE=$(NEO4J_PAGECACHE) \
	exec java -Xmx$(NEO4J_HEAP) -cp '$(NEO4J_TOOL)/target/classes:$(NEO4J_TOOL)/target/lib/*' \
		org.hippograph.neo4j.Launcher

# hippograph against the server `make neo4j` runs (start that first, in another shell).
serve-neo4j: $(STAMP)
	NEO4J_URI=bolt://127.0.0.1:$(NEO4J_BOLT_PORT) NEO4J_USER=neo4j \
	NEO4J_PASSWORD='$(NEO4J_PASSWORD)' $(VENV)/bin/hippograph serve $(SERVE_ARGS)

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
