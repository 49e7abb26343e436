"""The node's parameter table: names, types, defaults, ranges, descriptions, which are dynamic.

Plain data (no rclpy import) so docs, launch-file tests and the node share one list.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hirqa_ros.constants import BACKEND_CHOICES, DEFAULT_MIN_IMAGE_SIDE

IMAGE_TYPE_CHOICES = ("auto", "raw", "compressed")
RELIABILITY_CHOICES = ("best_effort", "reliable")
PRECISION_CHOICES = ("auto", "fp32", "fp16", "int8")
FROM_MODEL_CARD = None  # default of the thresholds: the loaded model card's calibrated values


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str  # "string" | "string_array" | "bool" | "int" | "double"
    default: Any
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    dynamic: bool = False  # settable at run time (ros2 param set); all others are read-only


PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("image_topics", "string_array", ["image"],
              "Input image topics; one camera each. Outputs are <topic>/quality and <topic>/accepted."),
    ParamSpec("image_types", "string_array", ["auto"],
              "Per topic: auto (a /compressed suffix means sensor_msgs/CompressedImage, else Image), "
              "raw or compressed. One entry for all topics or one per topic.",
              choices=IMAGE_TYPE_CHOICES),
    ParamSpec("model_path", "string", "",
              "Model directory (model.yaml, model.onnx, weights.pth); empty = $HIRQA_MODEL or the "
              "installed default models/hirqa-s."),
    ParamSpec("backend", "string", "auto",
              "Inference backend: auto (tensorrt > torch on CUDA > onnxruntime), tensorrt, torch, "
              "onnxruntime, torch2trt.", choices=BACKEND_CHOICES),
    ParamSpec("device", "string", "",
              "Device for torch/TensorRT backends, e.g. cuda:0 or cpu; empty = auto."),
    ParamSpec("precision", "string", "auto",
              "Inference precision: auto (fp16 on GPUs; on the CPU int8 when the model directory has a "
              "model.int8.onnx whose card says its accuracy loss is within tolerance, else fp32), fp32, "
              "fp16 (GPU backends) or int8 (onnxruntime on the CPU; its own thresholds from the card).",
              choices=PRECISION_CHOICES),
    ParamSpec("engine_cache_dir", "string", "",
              "Where TensorRT engines are cached; empty = the backend's default cache folder."),
    ParamSpec("force_engine_update", "bool", False,
              "Rebuild the TensorRT engine even if a cached one matches (slow; happens before ready)."),
    ParamSpec("input_policy", "string", "",
              "How a frame becomes network input: native, max-side:N or crops:KxS; "
              "empty = the model card's."),
    ParamSpec("warn_threshold", "double", FROM_MODEL_CARD,
              "Frames scoring below this are WARN (rejected); default from the model card.",
              range=(0.0, 1.0), dynamic=True),
    ParamSpec("error_threshold", "double", FROM_MODEL_CARD,
              "Frames scoring below this are ERROR; must be <= warn_threshold; default from the model card.",
              range=(0.0, 1.0), dynamic=True),
    ParamSpec("smoothing", "double", 0.0,
              "Weight of the past in an exponential moving average of each camera's score before the "
              "thresholds (0 = judge every frame on its own score).", range=(0.0, 0.99), dynamic=True),
    ParamSpec("hysteresis_raise", "int", 3,
              "A camera's /diagnostics level rises to WARN/ERROR after this many consecutive bad frames.",
              range=(1, 10000), dynamic=True),
    ParamSpec("hysteresis_clear", "int", 3,
              "A camera's /diagnostics level returns to OK after this many consecutive OK frames.",
              range=(1, 10000), dynamic=True),
    ParamSpec("publish_accepted", "bool", True, "Republish OK frames unchanged on <topic>/accepted."),
    ParamSpec("max_rate_hz", "double", 0.0,
              "Score at most this many frames per second per camera (frames arriving sooner are skipped "
              "and counted as throttled); 0 = as fast as inference allows.", range=(0.0, 1000.0)),
    ParamSpec("input_reliability", "string", "best_effort",
              "Input QoS reliability: best_effort (sensor data, matches every camera) or reliable.",
              choices=RELIABILITY_CHOICES),
    ParamSpec("input_depth", "int", 1, "Input QoS history depth (keep last N).", range=(1, 1000)),
    ParamSpec("output_depth", "int", 10,
              "Output QoS history depth (reliable, keep last N).", range=(1, 1000)),
    ParamSpec("min_image_side", "int", DEFAULT_MIN_IMAGE_SIDE,
              "Frames whose shorter side is below this many pixels are refused (no score).",
              range=(1, 100000)),
    ParamSpec("stale_timeout_s", "double", 2.0,
              "A camera that sent frames and then sends none for this long is reported ERROR (stopped).",
              range=(0.1, 3600.0)),
    ParamSpec("diagnostics_period_s", "double", 1.0, "Period of the /diagnostics status.", range=(0.1, 60.0)),
    ParamSpec("stats_window", "int", 100,
              "Frames per camera behind the latency percentiles, mean score and reject fraction.",
              range=(1, 100000)),
)

BY_NAME: dict[str, ParamSpec] = {p.name: p for p in PARAMS}
#: declared by rclpy itself on every node
BUILTIN = ("use_sim_time", "start_type_description_service")
DYNAMIC = tuple(p.name for p in PARAMS if p.dynamic)


def declared_names() -> set[str]:
    """Every parameter name the node accepts (its own plus rclpy's built-ins)."""
    return {p.name for p in PARAMS} | set(BUILTIN)


def topic_is_compressed(topic: str, kind: str = "auto") -> bool:
    """Image or CompressedImage for one topic: ``kind`` raw/compressed, or auto = a /compressed suffix."""
    kind = kind.strip().lower()
    if kind == "auto":
        return topic.rstrip("/").split("/")[-1] == "compressed"
    if kind in ("raw", "compressed"):
        return kind == "compressed"
    raise ValueError(f"image_types entry {kind!r}: expected one of {', '.join(IMAGE_TYPE_CHOICES)}")
