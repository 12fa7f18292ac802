# tingji — `make run` starts the workstation, `make test` runs the whole test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,funasr]'
	touch $@ $(STAMP)

run: $(STAMP)
	$(BIN)/tingji serve --host 0.0.0.0 --port 7860

lint: $(DEV)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: $(DEV) lint
	$(BIN)/python -m pytest

# `make bench` runs every benchmark, `make bench diarize long` only those named
BENCHES := $(filter-out bench run test lint clean,$(MAKECMDGOALS))

bench: $(DEV)
	$(BIN)/python -m benchmarks $(BENCHES)

ifneq ($(filter bench,$(MAKECMDGOALS)),)
ifneq ($(BENCHES),)
.PHONY: $(BENCHES)
$(BENCHES):
	@:
endif
endif

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
