# Two commands for a fresh machine: `make run` (set up, then start everything on the embedded defaults)
# and `make test` (set up, then the whole suite against PostgreSQL, SQLite, Redis and a real worker).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser run test test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the browser tests (installed only when missing).
browser:
	sh scripts/install-browser.sh

run: setup
	$(BIN)/llm-providers run

test: setup browser
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: setup browser
	$(BIN)/python -m pytest -q -m slow

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache
