# One command per task; CI calls the same ones (.ci/run → make test).
SHELL := /bin/bash
VENV := .venv
DEMO := RATHAUS_MODE=demo

.PHONY: setup run test lint audit fuzz

## setup: system packages, .venv, llama-cpp-python wheel, models, front-end assets (idempotent)
setup:
	scripts/setup.sh

## run: set up, migrate, load demo data if empty, serve the demo on http://127.0.0.1:8000
run: setup
	$(DEMO) $(VENV)/bin/rathaus db upgrade
	$(DEMO) $(VENV)/bin/rathaus demo --if-empty
	$(DEMO) $(VENV)/bin/rathaus serve

## test: set up, audit the dependencies (a warning if the audit data is unreachable), then
## run every test (all markers)
test: setup
	$(VENV)/bin/python scripts/audit.py --unreachable warn
	$(VENV)/bin/pytest

## audit: pip-audit over the installed dependencies; fails if its data cannot be reached
audit: setup
	$(VENV)/bin/python scripts/audit.py

## fuzz: at least 10,000 generated inputs through every parser and upload path (docs/fuzzing.md);
## fails on any crash, hang, HTTP 5xx or non-German message (CI runs tests/fuzz briefly)
fuzz: setup
	$(VENV)/bin/python benchmarks/fuzz.py --examples $${FUZZ_EXAMPLES:-10000}

## lint: ruff over sources, tests and benchmarks
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
