"""Export HiRQA to ONNX and write model directories (weights + ONNX + cards with sha256).

Also imports the authors' released checkpoints (``{"model_state_dict": ...}``) into a model dir.
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.artifacts import (
    EMBEDDING_OUTPUT,
    FRAMES_INPUT,
    SCORE_OUTPUT,
    InputContract,
    atomic_write_bytes,
)
from hirqa_ros.preprocess import AUTHORS_NORMALISATION, MIN_SIDE, Normalisation

log = logging.getLogger(__name__)

OPSET = 17
OUTPUTS = (SCORE_OUTPUT, EMBEDDING_OUTPUT)
ONNX_CHECK_TOLERANCE = 1e-4


def compact_initializers(onnx_model) -> int:
    """Store every fp32 initializer whose values are exactly fp16 as fp16 followed by a Cast to fp32.

    Halves the file for weights that were rounded to fp16; computation stays fp32 and results are
    bit-identical. Returns the number of initializers converted.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = onnx_model.graph
    new_inits, casts, converted = [], [], 0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            new_inits.append(init)
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < 16:
            new_inits.append(init)
            continue
        half = arr.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), arr, equal_nan=True):
            new_inits.append(init)
            continue
        stored = f"{init.name}__fp16"
        new_inits.append(numpy_helper.from_array(half, stored))
        casts.append(
            helper.make_node("Cast", [stored], [init.name], to=TensorProto.FLOAT, name=f"{init.name}__cast")
        )
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return converted


def export_onnx(
    model,
    path: str | os.PathLike,
    fp16: bool = False,
    compact: bool = False,
    check: bool = True,
    frames: bool = True,
    channel_order: str = "RGB",
    norm: Normalisation | None = None,
) -> Path:
    """Export ``model`` (a HiRQA module) to ONNX with the legacy exporter (``dynamo=False``), opset 17.

    ``frames=True`` (the contract of model directories): input ``frames`` uint8 (N, H, W, 3) in
    ``channel_order``, normalised with ``norm`` (the card's; the authors' when None) and
    transposed inside the graph (the values are recorded in the ONNX metadata). ``frames=False``: input
    ``image`` float NCHW, normalised by the caller (float32, or float16 with ``fp16``). Batch,
    height and width are dynamic. Outputs: ``score`` float32 (N,) first, ``embedding`` float32
    (N, 1024). ``fp16``: trunk and pooling in fp16 (see ``model.DeployedHiRQA``). BatchNorm is
    kept as its own node (not folded into the convolutions) so that the initializers are exactly
    the checkpoint's values; ``compact`` then stores fp16-exact weights as fp16 + Cast. ``check``
    runs onnx.checker. Needs the ``onnx`` package (torch's exporter needs it too).
    """
    import onnx
    import torch

    from hirqa_ros.model import DeployedHiRQA

    path = Path(path)
    contract = InputContract.frames(channel_order) if frames else InputContract(outputs=OUTPUTS)
    precision = "fp16" if fp16 else "fp32"
    norm = norm or AUTHORS_NORMALISATION
    net = DeployedHiRQA(model, frames=frames, channel_order=channel_order, precision=precision, norm=norm)
    # trace fp16 on the GPU when there is one: older torch builds lack fp16 convolutions on the CPU
    dev = "cuda" if fp16 and torch.cuda.is_available() else "cpu"
    net = net.to(dev).eval()
    if frames:
        dummy = torch.randint(0, 256, (1, 64, 64, 3), dtype=torch.uint8, device=dev)
        axes = {0: "batch", 1: "height", 2: "width"}
    else:
        dummy = torch.rand(1, 3, 64, 64, dtype=net.dtype, device=dev)
        axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # deprecation + constant-folding notices of the legacy exporter
        import io

        buf = io.BytesIO()
        # the legacy (TorchScript) exporter; torch < 2.5 has no `dynamo` argument and uses it anyway
        legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
        torch.onnx.export(
            net,
            (dummy,),
            buf,
            **legacy,
            opset_version=OPSET,
            input_names=[contract.name],
            output_names=list(OUTPUTS),
            dynamic_axes={contract.name: axes, SCORE_OUTPUT: {0: "batch"}, EMBEDDING_OUTPUT: {0: "batch"}},
            training=torch.onnx.TrainingMode.PRESERVE,  # model is in eval: BN exported unfused
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buf.getvalue())
    if compact and not fp16:
        compact_initializers(proto)
    proto.producer_name = "hirqa_ros"
    meta = {
        "hirqa.variant": getattr(model, "variant", "hirqa-s"),
        "hirqa.precision": "fp16" if fp16 else "fp32",
        "hirqa.mean": ",".join(map(str, norm.mean)),
        "hirqa.std": ",".join(map(str, norm.std)),
        "hirqa.input": f"{contract.name} {contract.dtype} {contract.layout} {contract.channels}",
    }
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    if check:
        onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def onnx_max_abs_diff(
    model,
    onnx_path: str | os.PathLike,
    sizes=((2, 64, 96),),
    seed: int = 0,
    norm: Normalisation | None = None,
) -> tuple[float, float]:
    """Largest |torch - ONNX Runtime| (score, embedding) differences, fp32 on the CPU.

    The reference is the plain float entry point on host-normalised input (``preprocess.prepare``),
    so for a camera-bytes ONNX this also checks the in-graph preprocessing. Inputs are seeded
    random uint8 frames; a BGR ONNX gets them channel-swapped.
    """
    import onnxruntime as ort
    import torch

    from hirqa_ros.model import DeployedHiRQA
    from hirqa_ros.preprocess import prepare

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    outputs = [o.name for o in sess.get_outputs()]
    bgr = "BGR" in dict(sess.get_modelmeta().custom_metadata_map).get("hirqa.input", "")
    reference = DeployedHiRQA(model, frames=False).eval()
    rng = np.random.default_rng(seed)
    worst = [0.0, 0.0]
    for n, h, w in sizes:
        frames = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
        x = prepare(list(frames), norm=norm or AUTHORS_NORMALISATION)[0].array
        with torch.no_grad():
            ref = [t.numpy() for t in reference(torch.from_numpy(x))]
        feed = (frames[..., ::-1] if bgr else frames) if inp.name == FRAMES_INPUT else x
        got = sess.run(outputs, {inp.name: np.ascontiguousarray(feed)})
        for i, (r, g) in enumerate(zip(ref, got)):
            worst[i] = max(worst[i], float(np.abs(r.reshape(g.shape) - g).max()))
    return worst[0], worst[1]


def export_checked_onnx(model, path: Path, storage: str, channel_order: str = "RGB",
                         norm: Normalisation | None = None) -> dict[str, Any]:
    """Export the camera-bytes ONNX of ``model`` to ``path``, check it against torch, and return
    the card fields that describe it (``input``, ``output``, ``export``)."""
    import torch

    export_onnx(model, path, compact=(storage == "float16"), channel_order=channel_order, norm=norm)
    diff, emb_diff = onnx_max_abs_diff(model, path, sizes=((2, MIN_SIDE * 2, MIN_SIDE * 3),), norm=norm)
    if diff > ONNX_CHECK_TOLERANCE:
        raise RuntimeError(f"exported ONNX disagrees with torch: max abs score diff {diff:.2e}")
    return {
        "input": InputContract.frames(channel_order).as_card(),
        "output": {"name": SCORE_OUTPUT, "range": [0, 1], "higher_is_better": True,
                   "embedding": {"name": EMBEDDING_OUTPUT, "dim": int(model.fc[0].in_features)}},
        "export": {
            "onnx_opset": OPSET,
            "exporter": "torch.onnx (TorchScript, dynamo=False)",
            "torch": torch.__version__,
            "weights_storage": storage,
            "onnx_initializers": "fp16 + Cast to fp32" if storage == "float16" else "fp32",
            "onnx_vs_torch_max_abs_diff": float(f"{diff:.3g}"),
            "onnx_vs_torch_embedding_max_abs_diff": float(f"{emb_diff:.3g}"),
        },
    }
