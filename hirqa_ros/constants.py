"""Names and defaults shared by the runtime, the CLI, the node and training (defined once here)."""

from __future__ import annotations

#: inference backends a user can name; ``auto`` picks one of them
BACKENDS = ("onnxruntime", "torch", "tensorrt", "torch2trt")
BACKEND_CHOICES = ("auto", *BACKENDS)
#: order ``auto`` tries them in
AUTO_ORDER = ("tensorrt", "torch", "onnxruntime")

#: tensor names of the exported ONNX model and of TensorRT engines built from it
ONNX_INPUT_NAME = "image"
ONNX_OUTPUT_NAME = "score"

#: score thresholds of a model card that has none calibrated (OK >= warn, ERROR < error)
DEFAULT_WARN_THRESHOLD = 0.5
DEFAULT_ERROR_THRESHOLD = 0.3

#: frames whose shorter side is below this many pixels are refused (node param min_image_side)
DEFAULT_MIN_IMAGE_SIDE = 16


def uncalibrated_thresholds() -> dict:
    """The ``thresholds`` entry of a model card whose thresholds were not calibrated."""
    return {"warn": DEFAULT_WARN_THRESHOLD, "error": DEFAULT_ERROR_THRESHOLD, "calibrated": False}
