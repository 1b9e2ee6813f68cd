#!/usr/bin/env bash
# Refresh requirements.lock: resolve pyproject.toml's dependencies (all extras) in a fresh
# virtual environment and record every installed version exactly. `make lock` runs it;
# `make test` / `make demo` then install exactly this set on every machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q "setuptools<81" wheel
"$tmp/venv/bin/pip" install -q ${TORCH_PIP_ARGS:-} "torch==${TORCH_VERSION:-2.13.0}"
"$tmp/venv/bin/pip" install -q -e '.[eval,dev,corpus,serve]'
{
  echo "# Exact versions of every package hylac installs (all extras), made by \`make lock\`."
  echo "# Installed by the Makefile with \`pip install -r requirements.lock\`; torch's local build"
  echo "# label (+cpu, +cu130) is dropped so that the CPU and the CUDA build both match."
  "$tmp/venv/bin/pip" freeze --exclude-editable --all | grep -v '^pip==' | sed -E 's/^(torch==[^+]+)\+.*/\1/'
} > requirements.lock
echo "requirements.lock: $(grep -vc '^#' requirements.lock) packages"
