# perfloop's two entry points: `make demo` (the main job) and `make test` (the suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo worker test lint kafka-up kafka-down compose bench clean

$(BIN)/perfloop: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $@

install: $(BIN)/perfloop

kafka-up: install
	$(BIN)/perfloop kafka up

kafka-down: install
	$(BIN)/perfloop kafka down

# the demo starts the local broker itself when none is reachable, and stops what it started
demo: install
	$(BIN)/perfloop demo

worker: kafka-up
	$(BIN)/perfloop worker

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py bench

# Docker Compose v2 as the docker CLI plugin, for the compose test (built once with Go)
compose:
	bash deploy/install-compose.sh

test: lint kafka-up compose
	$(BIN)/pytest

bench: kafka-up
	$(BIN)/python bench/bench_core.py

clean:
	rm -rf $(VENV) .perfloop
