# Two commands: `make run` starts the demo service, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test check lint bench clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup  ## the service on the embedded Redis, with the sample campaigns loaded
	$(BIN)/expertloop demo

lint: setup
	$(BIN)/ruff check core adapters bots tests bench
	$(BIN)/mypy --strict core/

chromium:  ## Debian's Chromium for the browser tests (Playwright drives it; no browser download)
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "the browser tests need Debian's chromium: sudo apt-get install chromium" >&2; \
	    exit 1; fi; }

test: lint chromium  ## ruff, mypy --strict core/, then the whole test suite
	$(BIN)/pytest

check: setup  ## the edit-test loop: unit and contract tiers only (tests/tiers.py), about a minute
	$(BIN)/pytest -m "unit or contract"

bench: setup  ## throughput against same-run baselines (see bench/)
	$(BIN)/python bench/import_items.py
	$(BIN)/python bench/answer_cycle.py
	$(BIN)/python bench/slack_ingest.py
	$(BIN)/python bench/telegram_ingest.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/drafting.py
	$(BIN)/python bench/escalation.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
