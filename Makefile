# The README's two commands: `make demo` and `make test`. Both build .venv from scratch if needed.
# `make test` includes tests/browser (JupyterLab in headless Chromium); they skip with one line
# when /usr/bin/chromium is missing. `make browser` runs only them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test browser bench lint format sandbox clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/novita-notebook demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

browser: $(STAMP)
	$(BIN)/python -m pytest -m browser

bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

sandbox: $(STAMP)
	$(BIN)/novita-notebook sandbox

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
