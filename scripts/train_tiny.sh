#!/usr/bin/env bash
# Train hylac-tiny as shipped (configs/tiny.yaml), continuing where a run stopped (--resume),
# then export its last checkpoint to runs/hylac-tiny/export once:
#   scripts/train_tiny.sh                 # one process (CPU or one GPU)
#   NPROC=2 scripts/train_tiny.sh         # torchrun, DDP over 2 processes
#   scripts/train_tiny.sh --set trainer.batch_size=64
#                                         # extra --set overrides go to the run
# It reads the analysis cache of the corpus (`make analysis` builds it); no audio is rendered.
# Then `make ship` exports the last checkpoint into codec/pretrained/hylac-tiny.
set -euo pipefail

PY=${PY:-.venv/bin/python}
NPROC=${NPROC:-1}
RUN=runs/hylac-tiny

if [ "$NPROC" -gt 1 ]; then
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$PY" -m torch.distributed.run --standalone \
        --nproc_per_node="$NPROC" -m codec train --resume --config configs/tiny.yaml "$@"
else
    "$PY" -m codec train --resume --config configs/tiny.yaml "$@"
fi

[ -f "$RUN/checkpoints/latest" ] || { echo "train_tiny.sh: no checkpoint in $RUN/checkpoints" >&2; exit 1; }
[ -f "$RUN/export/config.json" ] || "$PY" -m codec export "$RUN/checkpoints/$(cat "$RUN/checkpoints/latest")" "$RUN/export"
