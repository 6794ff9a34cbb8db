# Two commands do all set-up on a fresh machine:
#   make app    install into .venv (if needed) and start the app on the embedded default at http://127.0.0.1:7860
#   make test   install into .venv (if needed), plus Debian's chromium for the browser tests, and run the tests
# and, for researchers:
#   make train-tiny   re-train the embedded default (pack the synthetic set, train or resume, export); hours on 2 CPUs
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TORCH   ?= torch==2.13.0
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export GRADIO_ANALYTICS_ENABLED=False

.PHONY: install app test test-all chromium bench train-tiny

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

# The embedded default's recipe (assets/jog3r-tiny/MODEL_CARD.md). Re-running it resumes whatever is unfinished:
# packing skips existing clips, training continues from the newest checkpoint (--resume), export rewrites the folder.
TINY_DATA ?= data/synth-128x192
TINY_CLIPS ?= 1000
TINY_RUN ?= runs/jog3r-tiny-v2
TINY_OUT ?= assets/jog3r-tiny
TINY_ARGS ?= --preset tiny --mode joint --data $(TINY_DATA) --steps 3200 --batch-size 2 --lr 4e-4 \
	--warmup-steps 200 --lr-schedule cosine --min-lr 4e-5 --ema-decay 0.999 --ckpt-every 250 \
	--keep-checkpoints 3 --threads 2 --out $(TINY_RUN)

train-tiny: install
	$(BIN)/python -m jog3r.train.pack --out $(TINY_DATA) --num $(TINY_CLIPS) --threads 1 --shard 0/2 & p=$$!; \
	$(BIN)/python -m jog3r.train.pack --out $(TINY_DATA) --num $(TINY_CLIPS) --threads 1 --shard 1/2 || s=1; \
	wait $$p || s=1; exit $${s:-0}
	$(BIN)/python -m jog3r.train $(TINY_ARGS) $$(test -f $(TINY_RUN)/train_config.json && echo --resume)
	$(BIN)/python -m jog3r.train.export --run $(TINY_RUN) --out $(TINY_OUT)
