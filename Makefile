# Mercato: `make run` brings the network up, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test test-prerequisites lint bench reset install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	exec $(BIN)/mercato up

# Chromium, Prosody, PostgreSQL and Redis: installed or started when missing (as root), or
# named with the command that brings them.
test-prerequisites:
	bash tests/tools/prerequisites.sh

test: $(STAMP) test-prerequisites
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m bench $(BENCH_ARGS)

# Deletes every account, room and message; mercato.yaml (and its secrets) is kept.
reset:
	rm -rf data
