# twin: the README's two commands are `make paris` (set up + `twin build --city paris`) and `make test`.
# Both create the virtual environment at .venv and install the project into it.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# torch: pinned so that pip takes the CPU wheel of this release (on the project machines it lies on disk);
# an unpinned torch on Linux makes pip download a multi-GB CUDA build. Override with TORCH_SPEC=... on a GPU box.
TORCH_SPEC ?= torch==2.13.0
OUT ?= out
ARGS ?=

.PHONY: setup llvm paris test test-slow lint clean

setup: $(VENV)/.installed llvm

llvm:
	@bash .ci/ensure_llvm.sh

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "twin needs Python 3.11 or newer; found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -c 'import torch' 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

paris: setup
	$(BIN)/twin build --city paris --out $(OUT) $(ARGS)

test: setup
	$(BIN)/ruff check twin ingest render datasets baselines catalog tests
	$(BIN)/mypy twin ingest render datasets baselines catalog
	$(BIN)/pytest -q $(ARGS)

test-slow: setup
	$(BIN)/pytest -q -m slow $(ARGS)

lint: setup
	$(BIN)/ruff check twin ingest render datasets baselines catalog tests
	$(BIN)/mypy twin ingest render datasets baselines catalog

clean:
	rm -rf $(VENV) $(OUT)
