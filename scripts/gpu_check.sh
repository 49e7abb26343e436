#!/usr/bin/env bash
# GPU check for the scoring core, for a machine with an NVIDIA GPU (and optionally TensorRT /
# torch2trt): runs the GPU tests that are skipped on CPU-only machines, then a short benchmark.
# Usage: scripts/gpu_check.sh [extra hirqa bench args]   (expects ./.venv, see scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
"$PY" - <<'PY'
import torch
print("torch", torch.__version__, "CUDA", torch.version.cuda, "available:", torch.cuda.is_available())
if torch.cuda.is_available():
    print("GPU:", torch.cuda.get_device_name(0))
for mod in ("tensorrt", "torch2trt", "onnxruntime"):
    try:
        m = __import__(mod)
        print(mod, getattr(m, "__version__", "?"))
    except ImportError as exc:
        print(mod, "not installed:", exc)
PY
export HIRQA_ENGINE_CACHE=${HIRQA_ENGINE_CACHE:-$(mktemp -d)/engines}
"$PY" -m pytest -q -rs test/test_core_tensorrt.py test/test_core_scorer.py test/test_core_export.py
.venv/bin/hirqa bench --backends onnxruntime,torch,tensorrt --precisions fp32,fp16 --batches 1,8 \
  --sizes 224x224,480x640,720x1280 --iters 50 --warmup 10 "$@"
