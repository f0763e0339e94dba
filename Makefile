# One task runner. `make run` and `make test` are the whole quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LINT_PATHS := $(wildcard src tests bench)

.PHONY: run test lint typecheck pytest install install-dev migrate clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "counseldesk needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files make the install step run again only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Whole system on this machine: embedded PostgreSQL (unless DATABASE_URL is set), migrations,
## demo data on first start, dashboard, bot (emulator unless TELEGRAM_BOT_TOKEN is set), worker.
run: install
	$(BIN)/counseldesk serve --demo

migrate: install
	$(BIN)/counseldesk migrate

## Lint, format check, types, then the test suite.
test: install-dev lint typecheck pytest

lint: install-dev
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/ruff check $(LINT_PATHS)

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
