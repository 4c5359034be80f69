# `make run` and `make test` are all a new machine needs; both set everything up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,eval]"
	touch $@

run: install
	$(BIN)/voiceprint model pull
	$(BIN)/voiceprint serve

test: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/voiceprint model pull --all
	$(BIN)/pytest

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: install
	$(BIN)/python bench/embedding_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
