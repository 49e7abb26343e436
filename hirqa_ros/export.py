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

from hirqa_ros.artifacts import (
    CARD_FILE,
    EMBEDDING_OUTPUT,
    FORMAT_VERSION,
    FRAMES_INPUT,
    HUMAN_CARD_FILE,
    SCORE_OUTPUT,
    ArtifactError,
    InputContract,
    atomic_write_bytes,
    load_artifact,
    sha256_file,
)
from hirqa_ros.constants import uncalibrated_thresholds
from hirqa_ros.preprocess import AUTHORS_NORMALISATION, MEAN, MIN_SIDE, STD, Normalisation

log = logging.getLogger(__name__)

OPSET = 17
OUTPUTS = (SCORE_OUTPUT, EMBEDDING_OUTPUT)
WEIGHTS_FILE = "weights.pth"
ONNX_FILE = "model.onnx"
ONNX_CHECK_TOLERANCE = 1e-4
OFFICIAL_LICENCE = (
    "none published: the authors' repository (uf-robopi/HiRQA) has no LICENSE file, so all rights are "
    "reserved by default; using or redistributing these weights is the user's responsibility"
)


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


def _input_line(card: dict[str, Any]) -> str:
    c = InputContract.from_card(card)
    if c.camera_bytes:
        return (
            f"- Input (`model.onnx`): `{c.name}`, {c.dtype} {c.layout} {c.channels} camera bytes; "
            "normalisation and transpose run inside the graph"
        )
    return f"- Input (`model.onnx`): `{c.name}`, {c.dtype} {c.layout}, normalised on the host"


def _render_human_card(card: dict[str, Any]) -> str:
    lines = [f"# Model card: {card['name']}", ""]
    if card.get("description"):
        lines += [str(card["description"]).strip(), ""]
    lines += [
        f"- Variant: `{card['variant']}`",
        f"- Input policy: `{card['input_policy']}` (see docs/scoring.md)",
        f"- Normalisation: RGB in [0, 1], mean {tuple(card['normalisation']['mean'])}, "
        f"std {tuple(card['normalisation']['std'])}",
        _input_line(card),
        "- Output: `score` in (0, 1), higher = better quality"
        + (", then `embedding` (the pooled embedding the score head reads)" if card.get("input") else ""),
        f"- Thresholds: warn < {card['thresholds']['warn']}, error < {card['thresholds']['error']}"
        + ("" if card["thresholds"].get("calibrated") else " (NOT calibrated: defaults)"),
        f"- Licence: {card.get('licence', 'unknown')}",
        f"- Created: {card.get('created', '?')}",
        "",
    ]
    lines += _int8_section(card)
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


def _int8_section(card: dict[str, Any]) -> list[str]:
    """The human card's int8 section: decision, thresholds and accuracy fp32 vs int8 per type."""
    q = card.get("int8")
    if not isinstance(q, dict) or "accuracy" not in q:
        return []
    acc, t, quant = q["accuracy"], q["thresholds"], q["quantisation"]
    proto = acc["protocol"]
    lines = [
        "## int8 model (CPU)",
        "",
        f"`{(card.get('files') or {}).get(q.get('file', ''), {}).get('path', 'model.int8.onnx')}`: "
        f"static QDQ ({quant['weights']} weights, {quant['activations']} activations; fp32 kept: "
        f"{', '.join(quant['kept_fp32']) or 'nothing'}), calibrated on {quant['calibration_frames']} "
        f"frames ({', '.join(quant['calibration_sizes'])}) cut from the training photos, half degraded.",
        "",
        f"- CPU default for `backend: auto`: **{'yes' if q['cpu_default'] else 'no'}** ({q['decision']})",
        f"- Own thresholds (same rule and frames as fp32): warn < {t['warn']}, error < {t['error']}",
        f"- Protocol: {proto['views']} views of {proto.get('images', '?')}, "
        + (f"whole frames {', '.join(f'{w}x{h}' for w, h in proto['frame_sizes'])} in turn, "
           if proto.get("frame_sizes") else
           f"crop {proto['crop'] or 'whole image'}, resize_side {proto['resize_side'] or 'native'}, ")
        + f"{proto['types']} types x levels 0..5; "
        f"|score fp32 - int8|: max {acc['score_abs_diff']['max']}, mean {acc['score_abs_diff']['mean']}"
        + (f"; fault head: same top class as fp32 on {acc['fault_top1_agreement']['same_class']:.1%} of "
           f"{acc['fault_top1_agreement']['frames']} frames" if "fault_top1_agreement" in acc else ""),
        "",
        "| type | AUROC fp32 | AUROC int8 | delta | ladder SROCC fp32 | ladder SROCC int8 | delta |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("**pooled**", acc["pooled"])] + [(f"group {g}", v) for g, v in acc["per_group"].items()]
    rows += list(acc["per_type"].items())
    for name, v in rows:
        a, r = v["auroc"], v["ladder_srocc"]
        lines.append(f"| {name} | {a['fp32']:.4f} | {a['int8']:.4f} | {a['delta']:+.4f} | {r['fp32']:.4f} | "
                     f"{r['int8']:.4f} | {r['delta']:+.4f} |")
    return [*lines, ""]


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
    n = card.get("normalisation") or {}
    norm = Normalisation(tuple(n.get("mean", MEAN)), tuple(n.get("std", STD)))
    contract_fields = _export_checked_onnx(model, out / ONNX_FILE, storage, norm=norm)

    thresholds = dict(card.get("thresholds") or uncalibrated_thresholds())
    thresholds.setdefault("calibrated", False)
    files = {}
    for key, name in (("weights", WEIGHTS_FILE), ("onnx", ONNX_FILE)):
        files[key] = _file_entry(out, name)
    full: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "name": card.get("name", out.name),
        "description": card.get("description", ""),
        "variant": variant,
        "input_policy": str(InputPolicy.parse(card.get("input_policy", "native"))),
        "normalisation": {"colour": "RGB", "range": [0, 1], "mean": list(norm.mean), "std": list(norm.std)},
        **contract_fields,
        "thresholds": thresholds,
        "licence": card.get("licence", "unknown"),
        "created": card.get("created", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")),
        "files": files,
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


def _file_entry(folder: Path, name: str) -> dict[str, Any]:
    return {"path": name, "sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}


def _export_checked_onnx(model, path: Path, storage: str, channel_order: str = "RGB",
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


def refresh_model_dir(path: str | os.PathLike, channel_order: str = "RGB") -> Path:
    """Re-export a model directory's ``model.onnx`` from its ``weights.pth`` with the current
    contract (camera bytes in; ``score`` and ``embedding`` out) and update its cards in place.

    The weights are not touched; other card entries (thresholds, metrics, lineage, extra files)
    are kept. In ``MODEL_CARD.md`` the header and the file table are re-rendered and whatever
    follows the file table is kept. Returns the directory.
    """
    art = load_artifact(path)  # verifies every sha256 first
    out = art.path
    if art.weights is None or art.onnx is None:
        raise ArtifactError(f"{out}: the card must list weights and onnx files to refresh the ONNX")
    storage = (art.card.get("export") or {}).get("weights_storage") or (
        "float16" if any(str(v.dtype) == "torch.float16" for v in art.state_dict().values()) else "float32"
    )
    fields = _export_checked_onnx(art.torch_model(), art.onnx, storage, channel_order, art.normalisation)
    card: dict[str, Any] = {}
    for key, value in art.card.items():  # keep the card's order; the input contract follows normalisation
        if key != "input":
            card[key] = fields.pop(key, value)
        if key == "normalisation":
            card["input"] = fields.pop("input")
    card.update(fields)
    card["format"] = FORMAT_VERSION
    files = dict(card.get("files") or {})
    files["onnx"] = _file_entry(out, art.onnx.name)
    card["files"] = files
    card = _plain(card)
    atomic_write_bytes(out / CARD_FILE, yaml.safe_dump(card, sort_keys=False).encode())
    human = out / HUMAN_CARD_FILE
    tail = _after_file_table(human.read_text(encoding="utf-8")) if human.is_file() else ""
    atomic_write_bytes(human, (_render_human_card(card) + tail).encode())
    log.info("refreshed %s: model.onnx now takes %s", out, InputContract.frames(channel_order).as_card())
    return out


def _after_file_table(text: str) -> str:
    """What a human card holds after its ``## Files`` table (sections added by training)."""
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("## Files"))
    except StopIteration:
        return ""
    i = start + 1
    while i < len(lines) and not lines[i].startswith("|"):
        i += 1
    while i < len(lines) and lines[i].startswith("|"):
        i += 1
    return "".join(lines[i:])


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
