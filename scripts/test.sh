#!/usr/bin/env bash
# The test command: set up ./.venv, lint, then run the whole pytest suite (unit, CLI, real rclpy
# integration over Fast DDS, real bags, real ONNX Runtime). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export FASTDDS_BUILTIN_TRANSPORTS=${FASTDDS_BUILTIN_TRANSPORTS:-LARGE_DATA}
export HF_HUB_OFFLINE=1
echo "[test] ruff check"
.venv/bin/ruff check .
echo "[test] pytest"
.venv/bin/python -m pytest -q -ra "$@"
