"""Export HiRQA to ONNX and write model directories (weights + ONNX + cards with sha256).

Also imports the authors' released checkpoints (``{"model_state_dict": ...}``) into a model dir.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hirqa_ros.artifacts import CARD_FILE, FORMAT_VERSION, HUMAN_CARD_FILE, atomic_write_bytes, sha256_file
from hirqa_ros.constants import ONNX_INPUT_NAME as INPUT_NAME
from hirqa_ros.constants import ONNX_OUTPUT_NAME as OUTPUT_NAME
from hirqa_ros.constants import uncalibrated_thresholds
from hirqa_ros.preprocess import MEAN, MIN_SIDE, STD

log = logging.getLogger(__name__)

OPSET = 17

WEIGHTS_FILE = "weights.pth"
ONNX_FILE = "model.onnx"
ONNX_CHECK_TOLERANCE = 1e-4
OFFICIAL_LICENCE = (
    "none published: the authors' repository (uf-robopi/HiRQA) has no LICENSE file, so all rights are "
    "reserved by default; using or redistributing these weights is the user's responsibility"
)


def fp16_model(model):
    """fp16 network with fp16 input; the final linear + sigmoid stay fp32 (keeps score resolution)."""
    import copy

    import torch
    from torch import nn

    class HalfHiRQA(nn.Module):
        def __init__(self, m) -> None:
            super().__init__()
            m = copy.deepcopy(m).eval()
            self.backbone = m.backbone.half()
            self.global_pool_quality = m.global_pool_quality.half()
            self.fc = m.fc.float()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            emb = self.global_pool_quality(self.backbone(x))
            return torch.sigmoid(self.fc(emb.float())).squeeze(1)

    return HalfHiRQA(model).eval()


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
    model, path: str | os.PathLike, fp16: bool = False, compact: bool = False, check: bool = True
) -> Path:
    """Export ``model`` (a HiRQA module) to ONNX with the legacy exporter (``dynamo=False``), opset 17.

    Input ``image`` is NCHW (float32, or float16 with ``fp16=True``) with dynamic batch, height and
    width; output ``score`` is float32 (N,). BatchNorm is kept as its own node (not folded into
    the convolutions) so that the initializers are exactly the checkpoint's values; ``compact``
    then stores fp16-exact weights as fp16 + Cast. ``check`` runs onnx.checker. Needs the ``onnx``
    package (torch's exporter needs it too).
    """
    import onnx
    import torch

    path = Path(path)
    model = model.eval()
    if fp16:
        # trace on the GPU when there is one: older torch builds lack fp16 convolutions on the CPU
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        net = fp16_model(model).to(dev)
        dummy = torch.rand(1, 3, 64, 64, dtype=torch.float16, device=dev)
    else:
        net = model.float()
        dummy = torch.rand(1, 3, 64, 64)
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
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch"}},
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
        "hirqa.mean": ",".join(map(str, MEAN)),
        "hirqa.std": ",".join(map(str, STD)),
    }
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    if check:
        onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def onnx_max_abs_diff(model, onnx_path: str | os.PathLike, sizes=((2, 64, 96),), seed: int = 0) -> float:
    """Largest |torch - ONNX Runtime| score difference on seeded random inputs (fp32, CPU)."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for n, h, w in sizes:
        x = rng.standard_normal((n, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            ref = model.eval().float()(torch.from_numpy(x)).numpy()
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    return worst


def strip_wrapper_prefixes(state_dict: dict) -> dict:
    """Drop the ``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) key prefixes."""
    out = {}
    for k, v in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def _round_state_dict(state_dict: dict, storage: str) -> dict:
    import torch

    if storage not in ("float16", "float32"):
        raise ValueError(f"storage must be 'float16' or 'float32', got {storage!r}")
    dtype = torch.float16 if storage == "float16" else torch.float32
    out = {}
    for k, v in state_dict.items():
        v = v.detach().cpu()
        out[k] = v.to(dtype).contiguous() if v.is_floating_point() else v.contiguous()
    bad = [k for k, v in out.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"non-finite values after rounding to {storage} in {bad[:3]} (out of fp16 range?)")
    return out


def _plain(value: Any) -> Any:
    """Recursively turn numpy scalars, paths, tuples and str subclasses into plain YAML types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (Path, _dt.datetime, _dt.date)):
        return str(value)
    if hasattr(value, "item"):  # 0-d tensors
        return _plain(value.item())
    return str(value)


def _render_human_card(card: dict[str, Any]) -> str:
    lines = [f"# Model card: {card['name']}", ""]
    if card.get("description"):
        lines += [str(card["description"]).strip(), ""]
    lines += [
        f"- Variant: `{card['variant']}`",
        f"- Input policy: `{card['input_policy']}` (see docs/scoring.md)",
        f"- Normalisation: RGB in [0, 1], mean {tuple(card['normalisation']['mean'])}, "
        f"std {tuple(card['normalisation']['std'])}",
        "- Output: `score` in (0, 1), higher = better quality",
        f"- Thresholds: warn < {card['thresholds']['warn']}, error < {card['thresholds']['error']}"
        + ("" if card["thresholds"].get("calibrated") else " (NOT calibrated: defaults)"),
        f"- Licence: {card.get('licence', 'unknown')}",
        f"- Created: {card.get('created', '?')}",
        "",
    ]
    for section in ("training", "metrics", "lineage"):
        value = card.get(section)
        if value:
            lines += [
                f"## {section.capitalize()}",
                "",
                "```yaml",
                yaml.safe_dump(value, sort_keys=False).rstrip(),
                "```",
                "",
            ]
    lines += ["## Files", "", "| file | bytes | sha256 |", "|---|---:|---|"]
    for entry in card["files"].values():
        lines.append(f"| `{entry['path']}` | {entry['bytes']} | `{entry['sha256']}` |")
    lines.append("")
    return "\n".join(lines)


def write_model_dir(
    out_dir: str | os.PathLike, state_dict: dict, variant: str, card: dict, storage: str = "float16"
) -> Path:
    """Write a complete model directory and return its path.

    ``state_dict`` uses the authors' key names and loads strictly. Weights are stored as
    ``storage`` (fp16 by default: half the size); the ONNX is exported from those same rounded
    weights (cast to fp32) so torch and ONNX Runtime agree, and it is checked against torch
    (max abs score difference <= 1e-4). ``card`` supplies name, description, input_policy,
    thresholds {warn, error, calibrated}, training, metrics, lineage, licence.
    """
    import io

    import torch

    from hirqa_ros.model import build_model, canonical_variant
    from hirqa_ros.preprocess import InputPolicy

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    variant = canonical_variant(variant)
    rounded = _round_state_dict(strip_wrapper_prefixes(state_dict), storage)
    model = build_model(variant, rounded)  # strict: wrong keys or shapes fail here

    buf = io.BytesIO()
    torch.save({"model_state_dict": rounded}, buf)
    atomic_write_bytes(out / WEIGHTS_FILE, buf.getvalue())
    export_onnx(model, out / ONNX_FILE, compact=(storage == "float16"))
    diff = onnx_max_abs_diff(model, out / ONNX_FILE, sizes=((2, MIN_SIDE * 2, MIN_SIDE * 3),))
    if diff > ONNX_CHECK_TOLERANCE:
        raise RuntimeError(f"exported ONNX disagrees with torch: max abs score diff {diff:.2e}")

    thresholds = dict(card.get("thresholds") or uncalibrated_thresholds())
    thresholds.setdefault("calibrated", False)
    files = {}
    for key, name in (("weights", WEIGHTS_FILE), ("onnx", ONNX_FILE)):
        files[key] = {"path": name, "sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size}
    full: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "name": card.get("name", out.name),
        "description": card.get("description", ""),
        "variant": variant,
        "input_policy": str(InputPolicy.parse(card.get("input_policy", "native"))),
        "normalisation": {"colour": "RGB", "range": [0, 1], "mean": list(MEAN), "std": list(STD)},
        "output": {"name": OUTPUT_NAME, "range": [0, 1], "higher_is_better": True},
        "thresholds": thresholds,
        "licence": card.get("licence", "unknown"),
        "created": card.get("created", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")),
        "files": files,
        "export": {
            "onnx_opset": OPSET,
            "exporter": "torch.onnx (TorchScript, dynamo=False)",
            "torch": torch.__version__,
            "weights_storage": storage,
            "onnx_initializers": "fp16 + Cast to fp32" if storage == "float16" else "fp32",
            "onnx_vs_torch_max_abs_diff": float(f"{diff:.3g}"),
        },
        "training": card.get("training", {}),
        "metrics": card.get("metrics", {}),
        "lineage": card.get("lineage", {}),
    }
    for k, v in card.items():  # keep any extra keys the caller supplied
        full.setdefault(k, v)
    full = _plain(full)
    atomic_write_bytes(out / CARD_FILE, yaml.safe_dump(full, sort_keys=False).encode())
    atomic_write_bytes(out / HUMAN_CARD_FILE, _render_human_card(full).encode())
    total = sum(f["bytes"] for f in files.values())
    log.info("wrote model directory %s (%s, %.1f MB)", out, full["name"], total / 1e6)
    return out


def read_official_checkpoint(ckpt: str | os.PathLike) -> dict:
    """The state dict of an authors'-format ``.pth`` (``{"model_state_dict": ...}``)."""
    import torch

    from hirqa_ros.artifacts import torch_load_weights

    obj = torch_load_weights(ckpt)
    if isinstance(obj, dict) and "model_state_dict" in obj:
        sd = obj["model_state_dict"]
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = obj  # a bare state dict
    else:
        raise ValueError(f"{ckpt}: not a HiRQA checkpoint (expected a dict with 'model_state_dict')")
    return strip_wrapper_prefixes(sd)


def import_official(
    ckpt: str | os.PathLike, variant: str, out_dir: str | os.PathLike, storage: str = "float32"
) -> Path:
    """Turn the authors' released HiRQA / HiRQA-S checkpoint into a model directory.

    Loads strictly (a wrong variant or file fails with the offending keys). Weights are kept
    fp32 by default (exactly the authors' values); ``storage="float16"`` halves the size.
    """
    from hirqa_ros.model import HiRQA, canonical_variant

    variant = canonical_variant(variant)
    sd = read_official_checkpoint(ckpt)
    expected = HiRQA(variant).state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    bad_shape = sorted(k for k in set(expected) & set(sd) if tuple(expected[k].shape) != tuple(sd[k].shape))
    if missing or unexpected or bad_shape:
        other = "hirqa" if variant == "hirqa-s" else "hirqa-s"
        raise ValueError(
            f"{ckpt} does not match variant {variant!r} (is it --variant {other}?): "
            f"{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, "
            f"{len(bad_shape)} with other shapes {bad_shape[:3]}"
        )
    card = {
        "name": f"official-{variant}",
        "description": (
            f"The authors' released {'HiRQA-S (ResNet-18)' if variant == 'hirqa-s' else 'HiRQA (ResNet-50)'} "
            "weights (uf-robopi/HiRQA), imported unchanged. Thresholds are defaults, not calibrated."
        ),
        "input_policy": "native",
        "thresholds": uncalibrated_thresholds(),
        "licence": OFFICIAL_LICENCE,
        "lineage": {
            "source": "authors' weights (uf-robopi/HiRQA)",
            "checkpoint": Path(ckpt).name,
            "checkpoint_sha256": sha256_file(ckpt),
        },
    }
    return write_model_dir(out_dir, sd, variant, card, storage=storage)
