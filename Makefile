SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint docs bench load cluster mutation fuzz clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[server]"
	touch $@

$(BIN)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[server,test,redis,docs,client]"
	touch $(BIN)/.installed $@

run: $(BIN)/.installed
	@echo "AuthX demo: open http://$(HOST):$(PORT)/ and log in as test / test (Ctrl+C stops it)"
	PORT=$(PORT) $(BIN)/uvicorn examples.demo:app --host $(HOST) --port $(PORT)

lint: $(BIN)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The documentation site (MkDocs), built strictly: a broken link or reference fails.
docs: $(BIN)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint docs
	$(BIN)/pytest

# Each benchmark prints its figures, then SUMMARY lines; the table at the end gathers
# them so that one run compares with the next (the log stays in .bench-cache/).
# bench/cross_process.py needs redis-server; its exit status 1 (a target missed) is
# reported in the table, 2 (the run could not be made) stops here.
bench: $(BIN)/.installed-test
	@mkdir -p .bench-cache && : > .bench-cache/bench.log
	$(BIN)/python bench/ws_auth.py | tee -a .bench-cache/bench.log
	$(BIN)/python bench/live_connections.py | tee -a .bench-cache/bench.log
	$(BIN)/python bench/flood.py | tee -a .bench-cache/bench.log
	$(BIN)/python bench/cross_process.py | tee -a .bench-cache/bench.log || [ $$? -eq 1 ]
	@echo; echo "Summary (make bench):"; $(BIN)/python -m bench.summary .bench-cache/bench.log

# The security tests with the long Hypothesis profile (20,000 examples a property).
fuzz: $(BIN)/.installed-test
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/security -q

# 2,000 WebSocket clients, bad tokens, revocations and a Redis outage (needs redis-server).
load: $(BIN)/.installed-test
	$(BIN)/python bench/load.py

# 4 workers x 10,000 WebSocket connections on one Redis: revoke_subject latency, and a
# partition healed (needs redis-server).
cluster: $(BIN)/.installed-test
	$(BIN)/python bench/cluster.py

# Mutation testing of the security path (see CONTRIBUTING.md); not part of `make test`.
# A fresh run each time: mutmut keeps old verdicts, so a new test would not re-check them.
MUTMUT_VERSION := 3.8.1
MUTATION_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
MUTATION_MIN_SCORE ?= 90

$(BIN)/.installed-mutation: $(BIN)/.installed-test
	$(BIN)/pip install --quiet "mutmut==$(MUTMUT_VERSION)"
	touch $@

mutation: $(BIN)/.installed-mutation
	rm -rf mutants
	$(BIN)/mutmut run --max-children $(MUTATION_JOBS)
	$(BIN)/python -m tools.mutation_report --min-score $(MUTATION_MIN_SCORE)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache mutants site
