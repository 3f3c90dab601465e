# Two commands: `make run` starts the shell on the built-in model, `make test` runs the tests.
# Both make the virtual environment first. TORCH picks the torch build: the default is the CPU
# build (a bare `torch` requirement resolves to a multi-GB CUDA build); with a GPU use
# `make run TORCH=torch`. spandrel is installed with --no-deps (see SPANDREL).
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
# spandrel (upscalers, face restorers) without its torchvision requirement, which resolves to a CUDA build
# that breaks beside the CPU torch; invoke_shell/models/spandrel_import.py stands in for the little it uses.
SPANDREL ?= spandrel==0.4.2 spandrel_extra_arches==0.2.0
BIN := $(VENV)/bin

.PHONY: run test clean

run: $(VENV)/.installed
	$(BIN)/invoke-shell $(ARGS)

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps $(SPANDREL)
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info
