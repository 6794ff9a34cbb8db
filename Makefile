# Two commands do all set-up on a fresh machine:
#   make app    install into .venv (if needed) and start the app on the embedded default at http://127.0.0.1:7860
#   make test   install into .venv (if needed), plus Debian's chromium for the browser tests, and run the tests
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TORCH   ?= torch==2.13.0
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export GRADIO_ANALYTICS_ENABLED=False

.PHONY: install app test test-all chromium bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

chromium:
	@command -v chromium >/dev/null 2>&1 || ( [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ) || echo "chromium not installed: browser tests will be skipped"

app: install
	$(BIN)/python -m app $(ARGS)

test: install chromium
	$(BIN)/python -m pytest -q -n 2 $(ARGS)

test-all: install chromium
	$(BIN)/python -m pytest -q -n 2 -m "" $(ARGS)

bench: install
	for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f; done
