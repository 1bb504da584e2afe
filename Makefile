# `make run` and `make test` are all a new user needs; each sets up .venv by itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-sqlite test-postgresql lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --editable .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --editable '.[test]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed  ## serve on http://127.0.0.1:5000 (web + worker + local Redis)
	$(BIN)/casebridge start

test: test-sqlite test-postgresql  ## the whole suite on SQLite, then on PostgreSQL

test-sqlite: $(VENV)/.test-installed
	CASEBRIDGE_TEST_DATABASE=sqlite $(BIN)/pytest $(PYTEST_ARGS)

test-postgresql: $(VENV)/.test-installed
	CASEBRIDGE_TEST_DATABASE=postgresql $(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.test-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
