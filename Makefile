PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
AXE_STAMP := node_modules/.installed
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test test-fast bench lint clean postgres-server docs guide-screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test,postgres]'
	touch $@ $(STAMP)

run: $(STAMP)
	$(BIN)/publisher run --once

# The browser tests drive Debian's Chromium (never a browser download) and load axe-core
# from node_modules (pinned in package-lock.json).
$(CHROMIUM):
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null

$(AXE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@


# Tests that take the `store`/`database_url` fixture run on SQLite and on a throwaway
# PostgreSQL cluster that the tests start themselves (tests/pgcluster.py); here they must
# never skip.
# --durations: the slowest tests are listed at the end (the suite's time is watched: CI
# allows 90 minutes).
test: $(TEST_STAMP) $(CHROMIUM) $(AXE_STAMP) postgres-server
	PUBLISHER_REQUIRE_POSTGRES=1 $(BIN)/python -m pytest -q --durations=30

# The fast loop for development (docs/testing.md): everything but the PostgreSQL
# repeats, the tests that start and kill real processes, and the browser tests. It needs
# neither PostgreSQL nor Chromium; `make test` (CI) still runs every test.
FAST := not postgres and not slow and not browser
test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m "$(FAST)"

postgres-server:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; }

# The staff guide's screenshots (docs/staff/images/) are made by the browser tests' walks,
# on SQLite, with the fixed clock.
guide-screenshots: $(TEST_STAMP) $(CHROMIUM) $(AXE_STAMP)
	PUBLISHER_GUIDE_SHOTS=1 $(BIN)/python -m pytest -q -m browser -k "not postgresql"

bench: $(TEST_STAMP)
	$(BIN)/python -m bench

# docs/cli.md, docs/configuration.md and docs/store.md are generated from the code;
# tests/test_docs_reference.py fails when they drift.
docs: $(STAMP)
	$(BIN)/python -m publisher.cli.reference

lint: $(TEST_STAMP)
	$(BIN)/ruff check publisher tests bench
	$(BIN)/ruff format --check publisher tests bench
	$(BIN)/mypy publisher bench tests

clean:
	rm -rf $(VENV) node_modules var/*.db* feeds/* feeds/.publisher-feeds-state.json archive preview outbox
