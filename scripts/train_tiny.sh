#!/usr/bin/env bash
# Train hylac-tiny as shipped: the stages of configs/tiny*.yaml in order, each continuing
# where it stopped (--resume) and starting from the previous stage's export.
#   scripts/train_tiny.sh                 # one process (CPU or one GPU)
#   NPROC=2 scripts/train_tiny.sh         # torchrun, DDP over 2 processes
#   scripts/train_tiny.sh --set trainer.batch_size=32 --set trainer.num_workers=6
#                                         # extra --set overrides go to every stage
# Then `make ship` exports the last stage into codec/pretrained/hylac-tiny.
# The stages were written for different hardware (see each config's header): the batch
# sizes, worker counts and step counts are theirs unless overridden here.
set -euo pipefail

PY=${PY:-.venv/bin/python}
NPROC=${NPROC:-1}
EXTRA=("$@")

train() {  # config [--set ...]: train one stage, resuming
    if [ "$NPROC" -gt 1 ]; then
        OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$PY" -m torch.distributed.run --standalone \
            --nproc_per_node="$NPROC" -m codec train --resume --config "$@" "${EXTRA[@]}"
    else
        "$PY" -m codec train --resume --config "$@" "${EXTRA[@]}"
    fi
}

latest() {  # run folder -> its latest checkpoint folder
    local root="$1/checkpoints"
    [ -f "$root/latest" ] || { echo "train_tiny.sh: no checkpoint in $root" >&2; exit 1; }
    echo "$root/$(cat "$root/latest")"
}

export_run() {  # run folder: export its latest checkpoint to RUN/export once
    [ -f "$1/export/config.json" ] || "$PY" -m codec export "$(latest "$1")" "$1/export"
}

# 1: the whole codec with the patch head and the phoneme teacher.
train configs/tiny.yaml
export_run runs/hylac-tiny
# 2: decoder only.
train configs/tiny_decoder.yaml
export_run runs/hylac-tiny-decoder
# 3: the source-filter head and the encoder retrained for pitch, in two phases.
teacher="$(latest runs/hylac-tiny)/teacher.safetensors"
train configs/tiny_source_filter.yaml --set "trainer.init_from.teacher=$teacher"
phase1="$(latest runs/hylac-tiny-source-filter)"
train configs/tiny_source_filter.yaml --set trainer.out_dir=runs/hylac-tiny-source-filter-2 \
    --set "trainer.init_from.codec=$phase1" --set "trainer.init_from.teacher=$phase1/teacher.safetensors" \
    --set "trainer.init_skip=[]" --set trainer.lr.gen=3e-4 --set trainer.warmup_steps=50 \
    --set trainer.max_steps=1250
export_run runs/hylac-tiny-source-filter-2
# 4: decoder only again, on the whole corpus.
train configs/tiny_source_filter_decoder.yaml
export_run runs/hylac-tiny-sf-decoder
# 5: decoder only with the band-envelope loss, in two phases (weight 20, then 40).
train configs/tiny_source_filter_envelope.yaml
envelope1="$(latest runs/hylac-tiny-sf-envelope)"
train configs/tiny_source_filter_envelope.yaml --set trainer.out_dir=runs/hylac-tiny-sf-envelope-2 \
    --set "trainer.init_from.codec=$envelope1" --set loss.envelope=40.0 --set trainer.max_steps=2400
export_run runs/hylac-tiny-sf-envelope-2
