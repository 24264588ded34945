# Two entry points from a clean clone: `make demo` and `make test`. Both build .venv from nothing.
# `make docs` builds the documentation site into site/ (mkdocs build --strict).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch first and pinned: stable-baselines3 would otherwise pull a multi-GB CUDA build. Where the
# package index serves the CUDA build under this pin (PyPI on Linux does), name PyTorch's CPU index:
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH       ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: demo test test-slow lint bench docs clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[rl,misocp,dev,cluster]"
	touch $@

# the docs extra (MkDocs, Material, mkdocstrings) on its own stamp: `make test` does not need it, and
# mkdocstrings reads the sources without importing them, so the docs need neither torch nor the solvers
$(VENV)/.docs-installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

demo: $(VENV)/.installed
	$(BIN)/stackelberg-mop demo

# the same Hypothesis draws on every run (tests/conftest.py); HYPOTHESIS_PROFILE=dev draws anew
HYPOTHESIS_PROFILE ?= ci
export HYPOTHESIS_PROFILE

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

test-slow: $(VENV)/.installed
	$(BIN)/python -m pytest -q -m slow

lint: $(VENV)/.installed
	$(BIN)/ruff check stackelberg_mop tests benchmarks scripts

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/follower.py
	$(BIN)/python benchmarks/dispatch.py
	$(BIN)/python benchmarks/scenarios.py

clean:
	rm -rf $(VENV) build *.egg-info site
