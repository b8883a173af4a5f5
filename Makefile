# make demo: set up .venv and tell the V1 -> V2 story on the offline provider (README, "What the demo did").
# make test: set up .venv and run the test suite.
# make lint: ruff (lint + format check) and mypy, as CI runs them before the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_WS ?= workspace/demo

.PHONY: demo test lint format install bench clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -r requirements-dev.txt -e .
	touch $(STAMP)

install: $(STAMP)

# V1 needs one meeting per stage: each stage gathers its evidence in one execution phase (the
# clock runs 600x only while the run waits, so training counts its real seconds, not hours).
# V2 needs one meeting to be thrown back at shadow and one to report it and watch production.
DEMO_V1_MEETINGS ?= 5
DEMO_V2_MEETINGS ?= 2
demo: $(STAMP)
	rm -rf $(DEMO_WS)
	$(VENV)/bin/cvagents run --provider offline --meetings $(DEMO_V1_MEETINGS) --time-scale 600 --workspace $(DEMO_WS)
	$(VENV)/bin/cvagents submit --workspace $(DEMO_WS) --demo degraded
	$(VENV)/bin/cvagents run --provider offline --meetings $(DEMO_V2_MEETINGS) --time-scale 600 --workspace $(DEMO_WS)
	$(VENV)/bin/cvagents status --workspace $(DEMO_WS)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check cvagents tests benchmarks sync examples
	$(VENV)/bin/ruff format --check cvagents tests benchmarks sync examples
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix cvagents tests benchmarks sync examples
	$(VENV)/bin/ruff format cvagents tests benchmarks sync examples

bench: $(STAMP)
	@failed=""; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "over target:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) workspace
