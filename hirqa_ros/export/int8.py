"""Static int8 quantisation of a model directory's camera-bytes ONNX for CPU robots.

ONNX Runtime's static QDQ quantisation: int8 per-channel weights, uint8 activations, ranges
calibrated (MinMax) on frames cut at camera resolutions from the project's own TRAINING photos,
half of them degraded with the distortion library (never the validation/evaluation photos,
never OpenCV or scikit-image samples). The graph keeps its contract: uint8 NHWC ``frames`` in,
in-graph normalisation (fp32), ``score`` and ``embedding`` out. Selected parts can stay fp32
(``KEEP_FP32_PARTS``: the first convolution, the attention pooling, the score head).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.artifacts import (
    FRAMES_INPUT,
    INT8_CARD_KEY,
    INT8_FILE,
    INT8_FILE_KEY,
    INT8_TOLERANCE,
    int8_within_tolerance,
)
from hirqa_ros.constants import DEFAULT_CALIBRATION_FRAMES

log = logging.getLogger(__name__)

#: camera resolutions (H, W) the calibration frames are cut at, used in turn
CALIBRATION_SIZES = ((480, 640), (720, 1280))
#: parts of the network that can be kept in fp32 (ONNX node-name prefixes of the torch export)
KEEP_FP32_PARTS = {
    "first-conv": None,  # the first Conv node of the graph, whatever its name
    "attention": ("/global_pool_quality/",),
    "head": ("/fc/",),
}
#: ops quantised (the normalisation Cast/Mul/Sub and the softmax stay fp32)
OPS_TO_QUANTIZE = ("Conv", "MatMul", "Gemm", "Add", "MaxPool")


def calibration_frames(
    photos: str | os.PathLike | Sequence[np.ndarray],
    count: int = DEFAULT_CALIBRATION_FRAMES,
    sizes: Sequence[tuple[int, int]] = CALIBRATION_SIZES,
    degraded_fraction: float = 0.5,
    seed: int = 0,
) -> list[np.ndarray]:
    """``count`` uint8 HxWx3 RGB camera frames cut from ``photos`` (a folder or RGB arrays).

    Frame i has size ``sizes[i % len(sizes)]`` and is cut from photo ``i % len(photos)`` at a
    seeded position (a photo smaller than the frame is enlarged as little as needed); a seeded
    ``degraded_fraction`` of the frames gets one distortion type of the library at level 1..5.
    """
    import cv2

    from hirqa_ros.degradations import DEGRADATIONS, degrade

    if isinstance(photos, (str, os.PathLike)):
        from hirqa_ros.evaluation.images import load_folder

        images = [rgb for _, rgb in load_folder(photos)]
        if not images:
            raise FileNotFoundError(f"no readable photos in {photos} (build them with `hirqa prepare-data`)")
    else:
        images = list(photos)
    if count < 1 or not images:
        raise ValueError("calibration needs at least one photo and one frame")
    rng, pick = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])  # cuts, distortions
    types = sorted(DEGRADATIONS)
    n_degraded = round(count * degraded_fraction)
    degraded = set(pick.permutation(count)[:n_degraded].tolist())
    frames = []
    for i in range(count):
        h, w = sizes[i % len(sizes)]
        img = images[i % len(images)]
        ih, iw = img.shape[:2]
        if ih < h or iw < w:  # too small for this frame: enlarge as little as needed
            s = max(h / ih, w / iw)
            size = (max(w, round(iw * s)), max(h, round(ih * s)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
            ih, iw = img.shape[:2]
        y, x = int(rng.integers(0, ih - h + 1)), int(rng.integers(0, iw - w + 1))
        frame = np.ascontiguousarray(img[y : y + h, x : x + w])
        if i in degraded:
            name = types[int(pick.integers(len(types)))]
            frame = degrade(frame, name, int(pick.integers(1, 6)), seed=seed * 1000 + i)
        frames.append(frame)
    return frames


class FrameReader:
    """ONNX Runtime CalibrationDataReader over uint8 frames, one frame per batch (sizes may differ)."""

    def __init__(self, frames: Iterable[np.ndarray], input_name: str = FRAMES_INPUT) -> None:
        self._frames = list(frames)
        self._name = input_name
        self._i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self._frames):
            return None
        frame = self._frames[self._i]
        self._i += 1
        return {self._name: np.ascontiguousarray(frame[None])}

    def rewind(self) -> None:
        self._i = 0


def prepare_float_model(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """What the quantiser reads: ``src`` with fp16-stored initializers turned back into fp32
    (their Cast nodes removed), shapes inferred and ONNX Runtime's basic optimisations applied
    (constant folding, BatchNorm folded into the convolutions)."""
    import onnx
    from onnx import TensorProto, numpy_helper
    from onnxruntime.quantization.shape_inference import quant_pre_process

    proto = onnx.load(str(src))
    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    keep_nodes, replaced = [], {}
    for node in graph.node:
        src_name = node.input[0] if node.input else ""
        if node.op_type == "Cast" and src_name in inits and inits[src_name].data_type == TensorProto.FLOAT16:
            replaced[node.output[0]] = numpy_helper.from_array(
                numpy_helper.to_array(inits[src_name]).astype(np.float32), node.output[0]
            )
            continue
        keep_nodes.append(node)
    if replaced:
        used = {name for n in keep_nodes for name in n.input}
        new_inits = [i for i in graph.initializer if i.name in used and i.name not in replaced]
        del graph.initializer[:]
        graph.initializer.extend(new_inits + list(replaced.values()))
        del graph.node[:]
        graph.node.extend(keep_nodes)
    with tempfile.TemporaryDirectory(prefix="hirqa-quant-") as tmp:
        plain = Path(tmp) / "fp32.onnx"
        onnx.save(proto, str(plain))
        quant_pre_process(str(plain), str(dst), skip_symbolic_shape=True)
    return Path(dst)


def fp32_nodes(proto, parts: Iterable[str]) -> list[str]:
    """Names of the nodes of ``proto`` (a prepared ONNX) that the named ``parts`` keep in fp32."""
    names: list[str] = []
    for part in parts:
        if part not in KEEP_FP32_PARTS:
            raise ValueError(f"unknown part {part!r} to keep in fp32; expected {sorted(KEEP_FP32_PARTS)}")
        prefixes = KEEP_FP32_PARTS[part]
        if prefixes is None:
            first = next((n for n in proto.graph.node if n.op_type == "Conv"), None)
            if first is None:
                raise ValueError("the graph has no Conv node")
            names.append(first.name)
        else:
            names += [n.name for n in proto.graph.node if n.name.startswith(prefixes)]
    return list(dict.fromkeys(names))


def quantize_onnx(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    frames: Sequence[np.ndarray],
    keep_fp32: Sequence[str] = (),
    reduce_range: bool = False,
) -> dict[str, Any]:
    """Write the static int8 QDQ model of the camera-bytes ONNX ``src`` to ``dst`` (atomically),
    calibrated on ``frames``; returns what the model card records about it."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from hirqa_ros.artifacts import atomic_write_bytes

    if not frames:
        raise ValueError("quantisation needs calibration frames")
    with tempfile.TemporaryDirectory(prefix="hirqa-quant-") as tmp:
        prepared = prepare_float_model(src, Path(tmp) / "prepared.onnx")
        proto = onnx.load(str(prepared))
        if [i.name for i in proto.graph.input] != [FRAMES_INPUT]:
            raise ValueError(f"{src}: int8 quantisation needs the camera-bytes input '{FRAMES_INPUT}' "
                             "(refresh the model directory with `hirqa export --refresh`)")
        excluded = fp32_nodes(proto, keep_fp32)
        out = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(out),
            FrameReader(frames),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(OPS_TO_QUANTIZE),
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded,
            # MinMax: ONNX Runtime 1.32's histogram methods (Percentile, Entropy) fail on calibration
            # frames of different sizes
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        q = onnx.load(str(out))
        meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
        meta["hirqa.precision"] = "int8"
        del q.metadata_props[:]
        for k, v in meta.items():
            entry = q.metadata_props.add()
            entry.key, entry.value = k, v
        q.producer_name = "hirqa_ros"
        atomic_write_bytes(Path(dst), q.SerializeToString())
    sizes = sorted({f"{f.shape[1]}x{f.shape[0]}" for f in frames})
    return {
        "format": "QDQ (onnxruntime.quantization.quantize_static)",
        "weights": "int8, per channel, symmetric" + (", reduced range (7 bit)" if reduce_range else ""),
        "activations": "uint8, per tensor, asymmetric",
        "calibration_method": "MinMax",
        "ops_quantised": list(OPS_TO_QUANTIZE),
        "kept_fp32": list(keep_fp32),
        "kept_fp32_nodes": len(excluded),
        "calibration_frames": len(frames),
        "calibration_sizes": sizes,
    }


# ---------------------------------------------------------------------------------------------
# accuracy: fp32 and int8 side by side on the evaluation protocol, int8 thresholds, the auto rule

#: largest drop of pooled AUROC and ladder SROCC (fp32 -> int8) for int8 to be the CPU default


def _pair(fp32: dict, int8: dict, keys=("auroc", "ladder_srocc", "srocc")) -> dict:
    out = {}
    for k in keys:
        if k in fp32 and k in int8:
            out[k] = {"fp32": round(float(fp32[k]), 4), "int8": round(float(int8[k]), 4),
                      "delta": round(float(int8[k]) - float(fp32[k]), 4)}
    return out


def compare_precisions(
    artifact,
    int8_path: str | os.PathLike,
    images: Sequence[tuple[str, np.ndarray]],
    config=None,
    types: Sequence[str] | None = None,
    warn_frr: float = 0.05,
    error_frr: float = 0.01,
    progress: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Score the synthetic protocol (``evaluation.synthetic``) with the fp32 and the int8 ONNX on
    the same frames; return metrics side by side (pooled, per group, per type), the score
    differences, and thresholds calibrated by the fp32 rule (``evaluation.calibration``) for both."""
    from hirqa_ros.backends.onnxruntime_backend import OnnxRuntimeBackend
    from hirqa_ros.evaluation import calibration, synthetic
    from hirqa_ros.scorer import Scorer

    config = config or synthetic.ProtocolConfig()
    fns, faults = {}, {}
    for prec, path in (("fp32", artifact.onnx), ("int8", Path(int8_path))):
        backend = OnnxRuntimeBackend(artifact, device="cpu", precision=prec, onnx_path=path, threads=threads)
        fns[prec], faults[prec] = _score_and_fault(Scorer(artifact, backend, batch_size=config.batch_size))
    ps = synthetic.score_protocol(fns, images, types=types, config=config, progress=progress)
    s = {p: synthetic.summarize(ps, p) for p in fns}
    cal = {p: calibration.calibrate_protocol(ps, p, warn_frr, error_frr) for p in fns}
    d = np.abs(ps.scores["int8"] - ps.scores["fp32"])  # (views, types, levels); level 0 = the pristine view
    diff = np.r_[d[:, 0, 0], d[:, :, 1:].reshape(-1)]
    diff = diff[np.isfinite(diff)]
    return {
        "protocol": {**s["fp32"]["config"], "views": s["fp32"]["n_views"], "types": s["fp32"]["n_types"],
                     "levels": "0..5", "keep": "levels 0-1", "drop": "levels >= 3"},
        "pooled": _pair(s["fp32"]["pooled"], s["int8"]["pooled"]),
        "per_group": {g: _pair(v, s["int8"]["per_group"][g]) for g, v in s["fp32"]["per_group"].items()},
        "per_type": {t: _pair(v, s["int8"]["per_type"][t], ("auroc", "ladder_srocc"))
                     for t, v in s["fp32"]["per_type"].items()},
        "score_abs_diff": {"max": round(float(diff.max()), 4), "mean": round(float(diff.mean()), 4),
                           "p99": round(float(np.percentile(diff, 99)), 4), "frames": int(diff.size)},
        "calibration": {p: c.as_dict() for p, c in cal.items()},
        **_fault_agreement(faults),
    }


def _score_and_fault(scorer):
    """A score_fn of ``scorer`` and the list its fault-head top classes are appended to (per call)."""
    top: list[np.ndarray] = []

    def fn(frames):
        out = scorer.infer(frames)
        if getattr(out, "fault_probs", None) is not None:
            top.append(np.argmax(out.fault_probs, axis=1))
        return out.scores

    return fn, top


def _fault_agreement(faults: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """Share of frames whose fault-head top class is the same under int8 as under fp32 (the head
    reads the embedding, which int8 moves too); empty for models without a fault head."""
    if not faults["fp32"] or not faults["int8"]:
        return {}
    a, b = np.concatenate(faults["fp32"]), np.concatenate(faults["int8"])
    return {"fault_top1_agreement": {"frames": int(a.size), "same_class": round(float((a == b).mean()), 4)}}


DEFAULT_CALIBRATION_PHOTOS = ("data/pristine_native/train", "data/pristine/train")
FULL_FRAME_IMAGES = "data/pristine_native/val"  # as `hirqa eval --full-frame`
DEFAULT_KEEP_FP32 = ("first-conv", "attention", "head")


def default_calibration_photos() -> Path:
    """The training photos (full resolution when ``hirqa prepare-data --out data/pristine_native`` ran)."""
    for p in DEFAULT_CALIBRATION_PHOTOS:
        if Path(p).is_dir():
            return Path(p)
    raise FileNotFoundError(f"no training photos in {' or '.join(DEFAULT_CALIBRATION_PHOTOS)} "
                            "(build them with `hirqa prepare-data`), or pass --calib-images DIR")


def add_int8(
    model_dir: str | os.PathLike,
    calib_photos: str | os.PathLike | None = None,
    eval_images: str | os.PathLike | None = None,
    calib_frames: int = DEFAULT_CALIBRATION_FRAMES,
    keep_fp32: Sequence[str] = DEFAULT_KEEP_FP32,
    config=None,
    types: Sequence[str] | None = None,
    max_images: int | None = None,
    progress: bool = False,
    protocol: dict[str, int] | None = None,
    full_frame: bool | None = None,
) -> dict[str, Any]:
    """Quantise a model directory's ``model.onnx`` to ``model.int8.onnx``, evaluate fp32 and int8
    side by side on the held-out protocol, and record file (sha256), quantisation, thresholds,
    accuracy and the CPU-default decision under ``int8`` in the cards. Returns that entry.

    ``eval_images``/``config``/``types`` default to the protocol that calibrated the card's fp32
    thresholds, so both precisions' thresholds come from the same frames by the same rule: the
    full-frame protocol (``evaluation.synthetic.FULL_FRAME``, its types, the full-resolution
    validation photos) when the card has ``metrics.validation_full_frame`` (or ``full_frame``),
    else ``metrics.validation_synthetic.protocol``; ``protocol`` overrides some of its fields
    (e.g. ``{"crop": 0, "resize_side": 480}``: whole 480p-class frames in the crop protocol).
    """
    from hirqa_ros.artifacts import load_artifact, update_card
    from hirqa_ros.evaluation import synthetic
    from hirqa_ros.evaluation.images import load_folder

    art = load_artifact(model_dir)  # verifies every sha256 first
    if art.onnx is None or not art.input_contract.camera_bytes:
        raise ValueError(f"{art.path}: int8 needs the camera-bytes model.onnx (run `hirqa export --refresh`)")
    photos = Path(calib_photos) if calib_photos else default_calibration_photos()
    metrics = art.card.get("metrics") or {}
    if full_frame is None:  # the protocol that calibrated the card's fp32 thresholds
        full_frame = "validation_full_frame" in metrics
    if full_frame:
        default_dir = FULL_FRAME_IMAGES if Path(FULL_FRAME_IMAGES).is_dir() else "data/pristine/val"
        eval_dir = Path(eval_images or default_dir)
        config = config or replace(synthetic.FULL_FRAME, **dict(protocol or {}))
        types = types or list(synthetic.FULL_FRAME_TYPES)
    else:
        card_protocol = (metrics.get("validation_synthetic") or {}).get("protocol") or {}
        eval_dir = Path(eval_images or card_protocol.get("images") or "data/pristine/val")
        if config is None:
            fields = ("crop", "resize_side", "crops_per_image", "seed", "batch_size")
            chosen = {k: int(card_protocol[k]) for k in fields if k in card_protocol} | dict(protocol or {})
            config = synthetic.ProtocolConfig(**chosen)
    if photos.resolve() == eval_dir.resolve():
        raise ValueError(f"calibration photos and evaluation photos are the same folder ({photos})")
    frames = calibration_frames(photos, calib_frames)
    out = art.path / INT8_FILE
    log.info("quantising %s with %d calibration frames from %s (fp32: %s)", art.onnx, len(frames), photos,
             ", ".join(keep_fp32) or "nothing")
    quant = quantize_onnx(art.onnx, out, frames, keep_fp32=keep_fp32)
    quant["calibration_photos"] = str(photos)
    images = load_folder(eval_dir, limit=max_images)
    if not images:
        raise FileNotFoundError(f"no evaluation images in {eval_dir}")
    log.info("evaluating fp32 and int8 on %d held-out photos from %s (%s)", len(images), eval_dir, config)
    acc = compare_precisions(art, out, images, config, types, progress=progress)
    acc["protocol"]["images"] = str(eval_dir)
    ok, why = int8_within_tolerance(acc)
    cal = acc["calibration"]["int8"]
    entry = {
        "file": INT8_FILE_KEY,
        "source_onnx_sha256": art.file_sha256("onnx"),
        "quantisation": quant,
        "thresholds": {"warn": round(cal["warn"], 4), "error": round(cal["error"], 4), "calibrated": True,
                       "rule": "as fp32: warn: <= 5 % of keep frames (level 0-1) below; error: <= 1 %",
                       "calibration": cal},
        "tolerance": INT8_TOLERANCE,
        "cpu_default": ok,
        "decision": why,
        "accuracy": acc,
    }
    card = update_card(art.path, {**art.card, INT8_CARD_KEY: entry}, files={INT8_FILE_KEY: INT8_FILE})
    log.info("wrote %s; int8 %s the CPU default: %s", out, "is" if ok else "is NOT", why)
    return card[INT8_CARD_KEY]
