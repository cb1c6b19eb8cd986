# The two commands of the README: `make run` and `make test`. Everything else is a helper.
# uv is installed with pip when it is missing (PyPI is the only registry needed).
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif

.PHONY: help setup run test test-fast lint format bench mutation clean

help:
	@echo "make run    install, migrate, load demo data, serve on http://127.0.0.1:8000 (+ scheduler)"
	@echo "make test   install and run the whole test suite"
	@echo "make lint   ruff"
	@echo "make bench  benchmarks (print tables, write bench/results/*.json)"
	@echo "make mutation  mutation testing of the deciding rules (slow; docs/testing.md)"

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv
	$(UV) sync --frozen

# The presentation-attack model is supplied by the deployment; a checkout beside ../shared uses
# that copy (without it the stage says `off`).
PAD_MODEL := $(wildcard ../shared/models/minifasnetv2se_128.onnx)
ifneq ($(PAD_MODEL),)
run: export ISOCHECK_PAD_MODEL_PATH ?= $(abspath $(PAD_MODEL))
endif

run: setup
	$(UV) run isocheck demo
	$(UV) run isocheck serve

test: setup
	$(UV) run pytest

test-fast: setup
	$(UV) run pytest -m "not slow"

lint: setup
	$(UV) run ruff check .

format: setup
	$(UV) run ruff format isocheck server scheduler tests
	$(UV) run ruff check --fix .

bench: setup
	$(UV) run python bench/verify_bench.py

# Slow and CPU-hungry: never part of `make test` or CI. MODULES="verifier risk" for some.
mutation: setup
	$(UV) run python bench/mutation.py --show $(MODULES)

clean:
	rm -rf var .pytest_cache .ruff_cache
