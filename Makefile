# hylac: `make demo` runs the shipped models, `make test` runs the test suite.
# Each target sets up what it needs on a fresh machine (.venv, Python packages, Debian packages as root).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# Extra pip arguments for torch alone, e.g. a CPU-only build on a machine without a GPU:
#   make test TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
export PYTHONUNBUFFERED := 1

.PHONY: demo test bench corpus analysis train train-tts latents ship ship-tts lint lock clean system-base system-test system-bench system-corpus

# Everything from the lock, exactly (no resolution against today's releases), then the
# project itself without dependencies; the check fails with one clear line if the stack
# does not load.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PIP_ARGS) "$$(grep -m1 '^torch==' $(LOCK))"
	$(PY) -m pip install -q -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) scripts/check_install.py
	touch $(STAMP)

# Re-resolve pyproject.toml's dependencies and rewrite the lock (then commit it).
lock:
	scripts/lock.sh

system-base:
	scripts/setup_system.sh base
system-test:
	scripts/setup_system.sh test
system-bench:
	scripts/setup_system.sh bench
system-corpus:
	scripts/setup_system.sh corpus

test: $(STAMP) system-test
	$(PY) -m pytest

demo: $(STAMP) system-base
	$(PY) scripts/demo.py --out out

corpus: $(STAMP) system-corpus
	$(PY) scripts/build_corpus.py --out data/corpus --hours 6 --piper-hours 3 --workers 2

# The analysis cache of the corpus's training split (stage 1 of hylac-tiny trains from it).
ANALYSIS := data/analysis/train/cache.json
$(ANALYSIS): data/corpus/manifest.jsonl | $(STAMP)
	$(PY) -m codec.training.features data/corpus/manifest.jsonl --split train --out data/analysis/train
analysis: $(ANALYSIS)

# hylac-tiny from the analysis cache (scripts/train_tiny.sh); NPROC=2 runs it under torchrun.
NPROC ?= 1
train: $(STAMP) $(ANALYSIS)
	NPROC=$(NPROC) PY=$(PY) scripts/train_tiny.sh

ship: $(STAMP)
	$(PY) -m codec export runs/hylac-tiny/checkpoints/$$(cat runs/hylac-tiny/checkpoints/latest) codec/pretrained/hylac-tiny --overwrite

latents: $(STAMP)
	$(PY) -m codec encode-manifest data/corpus/manifest.jsonl --out data/latents --model hylac-tiny

train-tts: $(STAMP)
	$(PY) -m tts train --config configs/tts_tiny.yaml --resume

ship-tts: $(STAMP)
	$(PY) -m tts export runs/tts-tiny/checkpoints/$$(cat runs/tts-tiny/checkpoints/latest) tts/pretrained/hylac-tts-tiny --overwrite

bench: $(STAMP) system-bench
	$(PY) -m benchmarks.codec_quality --out benchmarks/results
	$(PY) -m benchmarks.codec_quality --data codec/assets/real --max-clips 0 --out benchmarks/results/real_speech
	$(PY) -m benchmarks.codec_quality --data codec/assets/real --max-clips 0 --band 8000 --out benchmarks/results/real_speech_8k
	$(PY) -m benchmarks.codec_speed --out benchmarks/results
	$(PY) -m benchmarks.tts_eval --out benchmarks/results
	$(PY) -m benchmarks.tts_finetune --out benchmarks/results

lint: $(STAMP)
	$(VENV)/bin/ruff check codec tts tests benchmarks scripts

clean:
	rm -rf out .pytest_cache
