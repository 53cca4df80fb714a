# One command per task; CI calls the same ones (.ci/run → make test).
SHELL := /bin/bash
VENV := .venv
DEMO := RATHAUS_MODE=demo

.PHONY: setup run test lint

## setup: system packages, .venv, llama-cpp-python wheel, models, front-end assets (idempotent)
setup:
	scripts/setup.sh

## run: set up, migrate, load demo data if empty, serve the demo on http://127.0.0.1:8000
run: setup
	$(DEMO) $(VENV)/bin/rathaus db upgrade
	$(DEMO) $(VENV)/bin/rathaus demo --if-empty
	$(DEMO) $(VENV)/bin/rathaus serve

## test: set up, then run every test (all markers)
test: setup
	$(VENV)/bin/pytest

## lint: ruff over sources, tests and benchmarks
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
