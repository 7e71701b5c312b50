# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never
# Bytecode is compiled when installing, as in the images: a start reads it instead of compiling
# every module again, which it would do each time where PYTHONDONTWRITEBYTECODE is set.
export UV_COMPILE_BYTECODE := 1
COMPILE_SOURCES := $(VENV)/bin/python -m compileall -q packages/common/src services/*/src migrations scripts

.PHONY: run test lint fmt schema bench install install-dev clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

install: $(UV)  ## the locked runtime dependencies (the development tools, if there, are kept)
	$(UV) sync --frozen --no-dev --inexact --quiet --python $(PYTHON)
	$(COMPILE_SOURCES)

install-dev: $(UV)  ## runtime and development dependencies
	$(UV) sync --frozen --quiet --python $(PYTHON)
	$(COMPILE_SOURCES)

run: install  ## migrate, load the reference data and start the three services
	$(VENV)/bin/python scripts/run.py

test: install-dev  ## the whole suite against real PostgreSQL (TEST_DATABASE_URL)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: install-dev  ## ruff, mypy --strict and the import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

fmt: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

schema: install-dev  ## regenerate the policy files' JSON Schemas
	$(VENV)/bin/registry-policies schema policies

.PHONY: fuzz
FUZZ_EXAMPLES ?= 300
fuzz: install-dev  ## schemathesis against the live gateway, FUZZ_EXAMPLES examples per operation
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/python -m pytest tests/fuzz -p no:cacheprovider $(PYTEST_ARGS)

bench: install-dev  ## benchmarks, run on demand; results go to bench/RESULTS.md with their commands
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(VENV)/bin/python bench/engine.py
	$(VENV)/bin/python bench/startup.py
	$(VENV)/bin/python bench/calculations.py
	$(VENV)/bin/python bench/claims.py
	$(VENV)/bin/python bench/batch.py --cases 1000000 --workers 2
	$(VENV)/bin/python bench/batch.py --peer --cases 200000
	$(VENV)/bin/python bench/openfisca.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
