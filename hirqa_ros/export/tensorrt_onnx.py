"""The ONNX files TensorRT builds engines from: constant-folded fp32, or the model's fp16 ONNX.

The shipped ``model.onnx`` stores fp16-exact weights as fp16 initializers behind Cast nodes (half
the file). onnx-tensorrt would import every Conv/BatchNormalization weight through those Casts as
a dynamic tensor, so TensorRT gets a copy with the Casts folded into fp32 initializers (and
BatchNormalization folded into the convolutions), written once by ONNX Runtime's basic graph
optimisations and cached beside the engines. ONNX Runtime is a runtime requirement: nothing
here needs ``onnx``, torch or torchvision on the robot.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hirqa_ros.artifacts import sha256_file

log = logging.getLogger(__name__)

FP16_ONNX_KEY = "onnx_fp16"  # optional model-card files entry: fp16 network for strongly typed builds


def source_onnx_sha256(artifact, onnx_precision: str) -> str:
    """sha256 identifying the ONNX an engine of ``onnx_precision`` is built from."""
    key = FP16_ONNX_KEY if onnx_precision == "fp16" else "onnx"
    sha = artifact.file_sha256(key)
    if sha:
        return sha
    path = artifact.file(key)
    if path is not None and path.is_file():
        return sha256_file(path)
    if onnx_precision == "fp16":  # exported on demand from the weights (TensorRT >= 11 only)
        import hashlib

        norm = artifact.normalisation
        what = (artifact.file_sha256("weights"), artifact.input_contract.channels, norm.mean, norm.std)
        return hashlib.sha256(repr(("fp16-export", *what)).encode()).hexdigest()
    raise RuntimeError(f"{artifact.path}: the model card lists no ONNX file")


def folded_fp32_onnx(src: str | os.PathLike, cache_dir: str | os.PathLike) -> Path:
    """An fp32 copy of ``src`` with constants folded (Cast of initializers, BatchNorm into Conv),
    written once by ONNX Runtime's basic optimisations into ``cache_dir`` and reused after."""
    import onnxruntime as ort

    src = Path(src)
    out = Path(cache_dir) / f"hirqa-{sha256_file(src)[:16]}-fp32-folded.onnx"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # plain ONNX ops only
    opts.optimized_model_filepath = str(tmp)
    opts.log_severity_level = 3
    try:
        ort.InferenceSession(str(src), sess_options=opts, providers=["CPUExecutionProvider"])
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("wrote the constant-folded fp32 ONNX for TensorRT: %s (from %s)", out, src)
    return out


def fp16_onnx_for(artifact, cache_dir: str | os.PathLike) -> Path:
    """The fp16 ONNX for a strongly typed fp16 engine: the model directory's ``onnx_fp16`` entry;
    without one (needed only on TensorRT >= 11, which has no FP16 builder flag) it is exported
    once from the weights into ``cache_dir`` where torch and onnx are installed, else an error
    says how to add one."""
    shipped = artifact.file(FP16_ONNX_KEY)
    if shipped is not None:
        return shipped
    out = Path(cache_dir) / f"hirqa-{source_onnx_sha256(artifact, 'fp16')[:16]}-fp16.onnx"
    if out.is_file():
        return out
    _need_exporter(
        f"this TensorRT builds fp16 engines only from an fp16 ONNX (weak typing is gone) and "
        f"{artifact.path} ships none. Add one on a machine with torch: "
        f"`hirqa export --model {artifact.path} --fp16-onnx-into-model`, or use precision fp32"
    )
    log.warning("exporting an fp16 ONNX for TensorRT to %s (the model directory ships none)", out)
    _export_frames_onnx(artifact, out, fp16=True)
    return out


def _need_exporter(why: str) -> None:
    """Raise ``RuntimeError(why)`` unless torch and onnx (torch's exporter) are installed."""
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"{why} ({exc.name} is not installed here to export one)") from exc


def _export_frames_onnx(artifact, out: Path, fp16: bool) -> Path:
    """Export the camera-bytes ONNX of ``artifact``'s weights (its channel order) to ``out``."""
    from hirqa_ros.export.onnx import export_onnx

    contract = artifact.input_contract
    order = contract.channels if contract.camera_bytes else "RGB"
    return export_onnx(
        artifact.torch_model(), out, fp16=fp16, frames=True, channel_order=order, norm=artifact.normalisation
    )


def onnx_for_plan(artifact, plan, cache_dir: str | os.PathLike) -> Path:
    """The ONNX file a :class:`~hirqa_ros.backends.tensorrt_backend.BuildPlan` parses."""
    if plan.onnx_precision == "fp16":
        return fp16_onnx_for(artifact, cache_dir)
    if artifact.onnx is None or not artifact.onnx.is_file():
        raise RuntimeError(f"{artifact.path}: no ONNX file to build a TensorRT engine from")
    if artifact.input_contract.camera_bytes:
        return folded_fp32_onnx(artifact.onnx, cache_dir)
    # a directory made before the camera-bytes input: its ONNX takes host-normalised floats
    out = Path(cache_dir) / f"hirqa-{source_onnx_sha256(artifact, 'fp32')[:16]}-fp32-frames.onnx"
    if not out.is_file():
        _need_exporter(
            f"{artifact.onnx} predates the camera-bytes input the TensorRT engine takes; refresh it "
            f"on a machine with torch: `hirqa export --model {artifact.path} --refresh`"
        )
        log.warning("exporting a camera-bytes ONNX for TensorRT to %s (%s predates it)", out, artifact.onnx)
        _export_frames_onnx(artifact, out, fp16=False)
    return folded_fp32_onnx(out, cache_dir)


FP16_ONNX_FILE = "model_fp16.onnx"


def add_fp16_onnx(model_dir: str | os.PathLike) -> Path:
    """Export the fp16 ONNX into a model directory and list it in its cards (``files.onnx_fp16``):
    a step for a machine with torch and onnx, so that TensorRT >= 10 builds fp16 engines strongly
    typed from it (TensorRT 11 needs it) and the robot never exports anything."""
    from hirqa_ros.artifacts import ArtifactError, load_artifact, update_card

    art = load_artifact(model_dir)
    if not art.input_contract.camera_bytes:
        raise ArtifactError(
            f"{art.path}: its model.onnx predates the camera-bytes input; refresh it first "
            f"(`hirqa export --model {art.path} --refresh`)"
        )
    out = art.path / FP16_ONNX_FILE
    _export_frames_onnx(art, out, fp16=True)
    update_card(art.path, art.card, files={FP16_ONNX_KEY: FP16_ONNX_FILE})
    log.info("added %s (%.1f MB) to %s", out.name, out.stat().st_size / 1e6, art.path)
    return out
