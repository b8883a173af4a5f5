# make demo: set up .venv with what the demo needs and tell the V1 -> V2 story on the offline provider (README, "What the demo did").
# make test: also install the test tools and every extra (requirements-dev.txt), then run the test suite.
# make lint: ruff (lint + format check) and mypy, as CI runs them before the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
DEMO_WS ?= workspace/demo

.PHONY: demo test lint format install install-demo bench clean

$(PY):
	python3 -m venv $(VENV)

# The package and its runtime dependencies (pyproject.toml). torch only when none is importable,
# so Colab's own CUDA build is left alone.
$(DEMO_STAMP): pyproject.toml setup.py | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e .
	touch $(DEMO_STAMP)

# Every extra (notebooks, mlflow, examples) and the test and lint tools.
$(TEST_STAMP): $(DEMO_STAMP) requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $(TEST_STAMP)

install-demo: $(DEMO_STAMP)
install: $(TEST_STAMP)

# V1 needs one meeting per stage: each stage gathers its evidence in one execution phase (the
# clock runs 600x only while the run waits, so training counts its real seconds, not hours).
# V2 needs one meeting to be thrown back at shadow and one to report it and watch production.
DEMO_V1_MEETINGS ?= 5
DEMO_V2_MEETINGS ?= 2
demo: $(DEMO_STAMP)
	rm -rf $(DEMO_WS)
	$(VENV)/bin/cvagents run --provider offline --meetings $(DEMO_V1_MEETINGS) --time-scale 600 --workspace $(DEMO_WS)
	$(VENV)/bin/cvagents submit --workspace $(DEMO_WS) --demo degraded
	$(VENV)/bin/cvagents run --provider offline --meetings $(DEMO_V2_MEETINGS) --time-scale 600 --workspace $(DEMO_WS)
	$(VENV)/bin/cvagents status --workspace $(DEMO_WS)

test: $(TEST_STAMP)
	$(PY) -m pytest -q

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check cvagents tests benchmarks sync examples
	$(VENV)/bin/ruff format --check cvagents tests benchmarks sync examples
	$(VENV)/bin/mypy

format: $(TEST_STAMP)
	$(VENV)/bin/ruff check --fix cvagents tests benchmarks sync examples
	$(VENV)/bin/ruff format cvagents tests benchmarks sync examples

bench: $(TEST_STAMP)
	@failed=""; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "over target:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) workspace
