"""Names and defaults shared by the runtime, the CLI, the node and training (defined once here)."""

from __future__ import annotations

#: inference backends a user can name; ``auto`` picks one of them
BACKENDS = ("onnxruntime", "torch", "tensorrt", "torch2trt")
BACKEND_CHOICES = ("auto", *BACKENDS)
#: order ``auto`` tries them in
AUTO_ORDER = ("tensorrt", "torch", "onnxruntime")

#: tensor names of the exported ONNX model and of TensorRT engines built from it
ONNX_INPUT_NAME = "frames"  # uint8 (N, H, W, 3) camera bytes; normalised + transposed inside the graph
ONNX_FLOAT_INPUT_NAME = "image"  # float32 (N, 3, H, W) normalised on the host (ONNX made before "frames")
ONNX_OUTPUT_NAME = "score"  # float32 (N,), always the first output
ONNX_EMBEDDING_NAME = "embedding"  # float32 (N, 1024): the pooled embedding the score head reads

#: score thresholds of a model card that has none calibrated (OK >= warn, ERROR < error)
DEFAULT_WARN_THRESHOLD = 0.5
DEFAULT_ERROR_THRESHOLD = 0.3

#: frames whose shorter side is below this many pixels are refused (node param min_image_side)
DEFAULT_MIN_IMAGE_SIDE = 16

#: scoring limit per frame in pixels (covers DCI 4096x2160 and UHD 3840x2160); larger frames are
#: scored as native-resolution tiles (node param max_pixels, --max-pixels)
DEFAULT_MAX_PIXELS = 4096 * 2160
#: decoding limit in pixels (100 MP = 300 MB as RGB): larger declared sizes are refused before decoding
DEFAULT_MAX_DECODE_PIXELS = 100_000_000

#: frames with no content (content.ContentLimits; 8-bit luma of an area-averaged thumbnail)
DEFAULT_BLACK_LEVEL = 30.0  # black: 99 % of the frame at or below this
DEFAULT_WHITE_LEVEL = 235.0  # white: 99 % at or above this
DEFAULT_UNIFORM_RANGE = 6.0  # uniform: 1st..99th percentile spread at most this
DEFAULT_FROZEN_S = 2.0  # frozen: image data byte-identical for this long (0 = off)


def uncalibrated_thresholds() -> dict:
    """The ``thresholds`` entry of a model card whose thresholds were not calibrated."""
    return {"warn": DEFAULT_WARN_THRESHOLD, "error": DEFAULT_ERROR_THRESHOLD, "calibrated": False}

# int8 calibration frames (`hirqa export --int8`): 64 measured closer to fp32 than 32 on the full-frame
# protocol (mean |score fp32 - int8| 0.0049 vs 0.0123 for the 2026-11-30 model, docs/scoring.md)
DEFAULT_CALIBRATION_FRAMES = 64
