#!/usr/bin/env bash
# GPU check of the scoring core, for a machine with an NVIDIA GPU (desktop or Jetson): runs the GPU
# tests that are skipped on CPU-only machines, then a short benchmark beside torch eager fp32.
#
# It FAILS when the GPU tests it is meant to run would be skipped: HIRQA_REQUIRE_GPU (default
# "cuda,tensorrt") turns those skips into failures. Set HIRQA_REQUIRE_GPU=cuda on a GPU machine
# without TensorRT, "cuda,tensorrt,torch2trt" (or "all") on a Jetson image with torch2trt, and
# HIRQA_ALLOW_SKIPS=1 to run everything anyway and accept skips (a dry run on a CPU machine).
#
# Usage: scripts/gpu_check.sh [extra hirqa bench args]   (expects ./.venv, see scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${HIRQA_GPU_CHECK_PYTHON:-.venv/bin/python}
if [ "${HIRQA_ALLOW_SKIPS:-0}" = "1" ]; then
  export HIRQA_REQUIRE_GPU=""
  echo "[gpu_check] HIRQA_ALLOW_SKIPS=1: GPU tests may skip; this run proves nothing about the GPU paths"
else
  export HIRQA_REQUIRE_GPU=${HIRQA_REQUIRE_GPU-cuda,tensorrt}
  echo "[gpu_check] required here: ${HIRQA_REQUIRE_GPU:-nothing} (skips of those are failures)"
fi
"$PY" - <<'PY'
import os
import sys

import torch

print("torch", torch.__version__, "CUDA", torch.version.cuda, "available:", torch.cuda.is_available())
for i in range(torch.cuda.device_count()):
    print(f"GPU {i}:", torch.cuda.get_device_name(i))
for mod in ("tensorrt", "torch2trt", "onnxruntime"):
    try:
        m = __import__(mod)
        print(mod, getattr(m, "__version__", "?"))
    except ImportError as exc:
        print(mod, "not installed:", exc)
if os.environ.get("HIRQA_REQUIRE_GPU") and not torch.cuda.is_available():
    sys.exit(
        "[gpu_check] FAILED: no CUDA GPU is visible to torch, so every GPU test would be skipped. Run this "
        "on a GPU machine (on a Jetson: a venv made with --system-site-packages and NVIDIA's Jetson torch "
        "wheel, see scripts/setup.sh), or set HIRQA_ALLOW_SKIPS=1 for a dry run."
    )
PY
export HIRQA_ENGINE_CACHE=${HIRQA_ENGINE_CACHE:-$(mktemp -d)/engines}
"$PY" -m pytest -q -rs test/test_core_tensorrt.py test/test_core_scorer.py test/test_core_export.py
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "[gpu_check] no CUDA GPU: benchmark skipped"
  exit 0
fi
"$(dirname "$PY")/hirqa" bench --backends torch,tensorrt,onnxruntime --precisions fp32,fp16 --batches 1,8 \
  --sizes 224x224,480x640,1080x1920 --iters 50 --warmup 10 "$@"
