# Two commands do all set-up on a fresh machine:
#   make app    install into .venv (if needed) and start the app on the embedded default at http://127.0.0.1:7860
#   make test   install into .venv (if needed), plus Debian's chromium for the browser tests, and run the tests
# and, for researchers:
#   make train-tiny   re-train the embedded default (pack the synthetic set, train or resume, export); hours on 2 CPUs
#   make ablations    the paper's findings at small scale (base gen run, then frozen-rec / gen / joint fine-tunes, eval)
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
TORCH   ?= torch==2.13.0
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export GRADIO_ANALYTICS_ENABLED=False

.PHONY: install lock app test test-all screenshots chromium bench train-tiny ablations

LOCK    ?= requirements.lock

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q "$$(grep '^pip==' $(LOCK))"

# Every version comes from requirements.lock (pip constraints); torch from TORCH.
$(VENV)/.installed: $(BIN)/python pyproject.toml $(LOCK)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -c $(LOCK) -e ".[test]"
	touch $@

install: $(VENV)/.installed

# Refresh requirements.lock: resolve the newest versions in a throw-away venv, then freeze them (review the diff,
# run `make test`, commit). Nothing else ever changes the versions.
lock:
	rm -rf .venv-lock && $(PY) -m venv .venv-lock
	.venv-lock/bin/pip install -q --upgrade pip && .venv-lock/bin/pip install -q "$(TORCH)" && .venv-lock/bin/pip install -q -e ".[test]"
	{ echo "# Every package 'make install' puts into .venv besides torch (pinned by the Makefile's TORCH) and this project."; \
	  echo "# Refresh: 'make lock' (a fresh venv, the unconstrained install, pip freeze). tests/test_environment.py checks .venv against it."; \
	  .venv-lock/bin/pip freeze --all --exclude-editable | grep -v -i -E '^(torch|jog3r-studio|setuptools|wheel)=='; } > $(LOCK)
	rm -rf .venv-lock

chromium:
	@command -v chromium >/dev/null 2>&1 || ( [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ) || echo "chromium not installed: browser tests will be skipped"

app: install
	$(BIN)/python -m app $(ARGS)

test: install chromium
	$(BIN)/python -m pytest -q -n 2 $(ARGS)

test-all: install chromium
	$(BIN)/python -m pytest -q -n 2 -m "" $(ARGS)

# Refresh the screenshots in docs/images (the tests themselves never write tracked files).
screenshots: install chromium
	JOG3R_UPDATE_DOCS_IMAGES=1 $(BIN)/python -m pytest -q -m browser tests/app/test_app_browser.py tests/viz/test_viewer.py

bench: install
	for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f; done

# The embedded default's recipe (assets/jog3r-tiny/MODEL_CARD.md). Re-running it resumes whatever is unfinished:
# packing skips existing clips, training continues from the newest checkpoint (--resume), export rewrites the folder.
TINY_DATA ?= data/synth-128x192
TINY_CLIPS ?= 1000
TINY_RUN ?= runs/jog3r-tiny-v2
TINY_OUT ?= assets/jog3r-tiny
# --steps 2750 with the cosine horizon at 3200: the committed weights are step 2750 of that schedule (model card)
TINY_ARGS ?= --preset tiny --mode joint --data $(TINY_DATA) --steps 2750 --decay-steps 3200 --batch-size 2 --lr 4e-4 \
	--warmup-steps 200 --lr-schedule cosine --min-lr 4e-5 --ema-decay 0.999 --ckpt-every 250 \
	--keep-checkpoints 3 --threads 2 --out $(TINY_RUN)

train-tiny: install
	$(BIN)/python -m jog3r.train.pack --out $(TINY_DATA) --num $(TINY_CLIPS) --threads 1 --shard 0/2 & p=$$!; \
	$(BIN)/python -m jog3r.train.pack --out $(TINY_DATA) --num $(TINY_CLIPS) --threads 1 --shard 1/2 || s=1; \
	wait $$p || s=1; exit $${s:-0}
	$(BIN)/python -m jog3r.train $(TINY_ARGS) $$(test -f $(TINY_RUN)/train_config.json && echo --resume)
	$(BIN)/python -m jog3r.train.export --run $(TINY_RUN) --out $(TINY_OUT)

# The paper's ablations at small scale (jog3r/train/ablations.py; README "Reproducing the paper's findings"): a `gen`
# base from scratch stands in for the pre-trained OpenSora, then three fine-tunes of it with identical schedules,
# then `jog3r eval` of each with one fixed MEt3R scorer (the embedded default). Re-running resumes unfinished training
# and redoes the exports and evaluations; after changing the base, delete the fine-tune folders. The fine-tunes are
# evaluated with their raw final weights (cosine-decayed lr): their decoders start from random weights, which an EMA
# of a short run without warm-up kept (37 % after 1000 steps; see docs/notes/train.md).
ABL_DIR ?= runs/ablations
ABL_BASE_STEPS ?= 1600
ABL_STEPS ?= 1000
ABL_COMMON ?= --preset tiny --data $(TINY_DATA) --batch-size 2 --ema-decay 0.999 --ckpt-every 200 \
	--keep-checkpoints 2 --threads 2 --lr-schedule cosine
# --matches none: the ablation compares the models' own V2C (the paper's path), not the correspondence default.
ABL_EVAL ?= --synth-test 4 --t2v-prompts 4 --met3r-weights $(TINY_OUT) --matches none
# The committed results' base was trained before the EMA warm-up existed; drop this for a cleaner base (the numbers
# will then differ from docs/ablations).
ABL_BASE_EMA ?= --no-ema-warmup

ablations: install
	test -f $(TINY_DATA)/packed.json || { echo "pack the synthetic set first (the first step of make train-tiny)"; exit 1; }
	$(BIN)/python -m jog3r.train $(ABL_COMMON) --mode gen --steps $(ABL_BASE_STEPS) --lr 4e-4 --warmup-steps 200 \
		--min-lr 4e-5 $(ABL_BASE_EMA) --out $(ABL_DIR)/base $$(test -f $(ABL_DIR)/base/train_config.json && echo --resume)
	$(BIN)/python -m jog3r.train.export --run $(ABL_DIR)/base --out $(ABL_DIR)/base/model
	set -e; for m in frozen-rec gen joint; do \
		$(BIN)/python -m jog3r.train $(ABL_COMMON) --init $(ABL_DIR)/base/model --mode $$m --steps $(ABL_STEPS) \
			--lr 2e-4 --warmup-steps 50 --min-lr 2e-5 --out $(ABL_DIR)/$$m \
			$$(test -f $(ABL_DIR)/$$m/train_config.json && echo --resume); \
		$(BIN)/python -m jog3r.train.export --run $(ABL_DIR)/$$m --out $(ABL_DIR)/$$m/model --raw; done
	$(BIN)/python -m jog3r eval --weights $(ABL_DIR)/base/model --out $(ABL_DIR)/base/eval $(ABL_EVAL) --windows --synth-test 0 --no-consistency
	$(BIN)/python -m jog3r eval --weights $(ABL_DIR)/gen/model --out $(ABL_DIR)/gen/eval $(ABL_EVAL) --windows --synth-test 0 --no-consistency
	$(BIN)/python -m jog3r eval --weights $(ABL_DIR)/frozen-rec/model --out $(ABL_DIR)/frozen-rec/eval $(ABL_EVAL)
	$(BIN)/python -m jog3r eval --weights $(ABL_DIR)/joint/model --out $(ABL_DIR)/joint/eval $(ABL_EVAL)
	$(BIN)/python -m jog3r.train.ablations --root $(ABL_DIR)
