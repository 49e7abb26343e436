#!/usr/bin/env bash
# Create ./.venv and install hirqa_ros into it with everything: runtime (ONNX Runtime, OpenCV),
# ROS 2 rclpy from PyPI, rosbag tools, training (torch) and test tools. Re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi

stamp=.venv/.hirqa-setup-stamp
want=$(cat setup.py scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] .venv is up to date"
  exit 0
fi

.venv/bin/pip install -q --upgrade pip
# torch: a CUDA build that also runs on the CPU (torchvision from PyPI does not import beside
# the CPU-only torch 2.13.0 wheel); aarch64 (Jetson-class boards) gets a CPU build.
if [ "$(uname -m)" = "aarch64" ]; then
  TORCH_SPEC=${TORCH_SPEC:-"torch==2.9.1 torchvision==0.24.1"}
else
  TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
fi
echo "[setup] installing $TORCH_SPEC (large download on a machine without a local copy)"
# shellcheck disable=SC2086
.venv/bin/pip install -q $TORCH_SPEC
echo "[setup] installing hirqa_ros[ros,bag,train,dev] (editable)"
.venv/bin/pip install -q -e ".[ros,bag,train,dev]"
echo "$want" > "$stamp"
echo "[setup] done: $(.venv/bin/python -c 'import hirqa_ros, torch, onnxruntime; print("hirqa_ros", hirqa_ros.__version__, "torch", torch.__version__, "onnxruntime", onnxruntime.__version__)')"
