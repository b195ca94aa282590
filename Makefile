# One entry point for people and CI. Every target creates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv run test test-unit test-integration lint format types check emulators bench bench-table clean

help:
	@echo "make run        start the whole suite locally on the emulators (Ctrl-C stops it)"
	@echo "make test       run every test (unit + real emulators); installs what it needs"
	@echo "make check      lint + types + tests"
	@echo "make emulators  start only the Firestore and Pub/Sub emulators"
	@echo "make bench      run the benchmarks (JSON on stdout, then one Markdown table)"
	@echo "make bench-table  the table of the last run of each benchmark (bench/results/)"

# pip's own lines (one per package) are the progress: a quiet install looked like a hang.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || { echo "# creating the virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "# installing the pinned dependencies into $(VENV) (first run only, about a minute)"
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt
	@echo "# installing this project into $(VENV) (editable)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)
	@echo "# $(VENV) is ready"

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devstack run

emulators: $(STAMP)
	$(BIN)/python -m devstack emulators

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

types: $(STAMP)
	$(BIN)/mypy

check: lint types test

bench: $(STAMP)
	@for b in bench/[!_]*.py; do [ $$b = bench/table.py ] && continue; echo "== $$b" >&2; $(BIN)/python $$b || exit 1; done
	@$(BIN)/python -m bench.table

bench-table: $(STAMP)
	@$(BIN)/python -m bench.table

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache
