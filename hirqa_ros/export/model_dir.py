"""Write model directories: weights (fp16 storage by default) + the checked camera-bytes ONNX +
the cards (through ``artifacts.update_card``), and refresh an existing one's ONNX."""

from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path
from typing import Any

from hirqa_ros.artifacts import (
    FORMAT_VERSION,
    ONNX_FILE,
    WEIGHTS_FILE,
    ArtifactError,
    InputContract,
    atomic_write_bytes,
    load_artifact,
    update_card,
)
from hirqa_ros.constants import uncalibrated_thresholds
from hirqa_ros.export.onnx import export_checked_onnx
from hirqa_ros.preprocess import Normalisation
from hirqa_ros.trunks import TRUNKS, trunk_normalisation

log = logging.getLogger(__name__)


def strip_wrapper_prefixes(state_dict: dict) -> dict:
    """Drop the ``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) key prefixes."""
    out = {}
    for k, v in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def round_state_dict(state_dict: dict, storage: str) -> dict:
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
    rounded = round_state_dict(strip_wrapper_prefixes(state_dict), storage)
    model = build_model(variant, rounded)  # strict: wrong keys or shapes fail here

    buf = io.BytesIO()
    torch.save({"model_state_dict": rounded}, buf)
    atomic_write_bytes(out / WEIGHTS_FILE, buf.getvalue())
    n = card.get("normalisation") or {}
    default = trunk_normalisation(variant)  # the trunk's own statistics unless the card names others
    norm = Normalisation(tuple(n.get("mean", default.mean)), tuple(n.get("std", default.std)))
    contract_fields = export_checked_onnx(model, out / ONNX_FILE, storage, norm=norm)

    thresholds = dict(card.get("thresholds") or uncalibrated_thresholds())
    thresholds.setdefault("calibrated", False)
    full: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "name": card.get("name", out.name),
        "description": card.get("description", ""),
        "variant": variant,
        "input_policy": str(InputPolicy.parse(card.get("input_policy", "native"))),
        "normalisation": {"colour": "RGB", "range": [0, 1], "mean": list(norm.mean), "std": list(norm.std)},
        "trunk": TRUNKS[variant].card(),
        **contract_fields,
        "thresholds": thresholds,
        "licence": card.get("licence", "unknown"),
        "created": card.get("created", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")),
        "files": {},
        "training": card.get("training", {}),
        "metrics": card.get("metrics", {}),
        "lineage": card.get("lineage", {}),
    }
    for k, v in card.items():  # keep any extra keys the caller supplied
        full.setdefault(k, v)
    full = update_card(out, full, files={"weights": WEIGHTS_FILE, "onnx": ONNX_FILE}, sections="")
    total = sum(f["bytes"] for f in full["files"].values())
    log.info("wrote model directory %s (%s, %.1f MB)", out, full["name"], total / 1e6)
    return out


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
    fields = export_checked_onnx(art.torch_model(), art.onnx, storage, channel_order, art.normalisation)
    card: dict[str, Any] = {}
    for key, value in art.card.items():  # keep the card's order; the input contract follows normalisation
        if key != "input":
            card[key] = fields.pop(key, value)
        if key == "normalisation":
            card["input"] = fields.pop("input")
    card.update(fields)
    card["format"] = FORMAT_VERSION
    update_card(out, card, files={"onnx": art.onnx.name})
    log.info("refreshed %s: model.onnx now takes %s", out, InputContract.frames(channel_order).as_card())
    return out
