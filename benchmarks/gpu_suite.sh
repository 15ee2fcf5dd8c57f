#!/usr/bin/env bash
# One command, no interaction, <= 8 min on one H100/H200: training examples/s + MFU
# (paper CNN, batch 32/128/512, features on device, bf16, XLA), the input pipeline's
# host-side ceiling and serving latency at batch 1/8/64, all in one JSON file.
#   bash benchmarks/gpu_suite.sh [--output_json=PATH] [--dry_run]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$PYTHON" benchmarks/gpu_suite.py "$@"
