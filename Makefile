# Quick start: `make demo` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow install cassettes clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Run the whole job against a local Okta emulator and a local SCIM server (no Okta org needed).
demo: $(STAMP)
	$(BIN)/reconcile demo

## The default suite (real SCIM server and Okta emulator on 127.0.0.1), under 10 minutes.
test: $(STAMP)
	$(BIN)/ruff check reconciler tests
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

## Long-running tests, not part of `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

## Re-record cassettes/ from a local scenario (credentials are filtered out).
cassettes: $(STAMP)
	$(BIN)/python -m tests.cassette_scenario

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis reconciler.db demo-state
