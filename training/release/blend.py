"""Weight-space blend of a model and a continuation trained from it (WiSE-FT, Wortsman et al. 2022):
every float tensor, BatchNorm statistics included, becomes ``(1 - alpha) * base + alpha * tuned``.

A continuation that learns new faults but forgets some old ones (docs/gpu_training.md, round 3) keeps
much of both when averaged with the model it started from. The blend keeps the base's fault head (it
reads the embedding, so ``hirqa eval --full-frame`` measures it again) and is finalized only when the
full-frame gate passes (``release/finalize.py``: pooled AUROC and ladder SROCC both above the base's, same
frames):

    hirqa release blend --base models/hirqa-s --tuned runs/cpu_cont/run_keep --alpha 0.5 \\
        --out runs/blend/hirqa-s
    hirqa eval --full-frame --model runs/blend/hirqa-s --json runs/blend/new.json
    hirqa eval --full-frame --model models/hirqa-s --json runs/blend/old.json
    hirqa release finalize --out runs/blend/hirqa-s --eval runs/blend/new.json \\
        --baseline-eval runs/blend/old.json
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

log = logging.getLogger("hirqa.release")

# sections of the base card that describe the base's own files or numbers, not the blend's
STALE_SECTIONS = ("files", "export", "format", "int8", "metrics")


def blend_state_dicts(base: dict, tuned: dict, alpha: float) -> dict:
    """``(1 - alpha) * base + alpha * tuned`` for float tensors (in fp32); other tensors from ``base``."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if base.keys() != tuned.keys():
        diff = sorted(set(base) ^ set(tuned))
        raise ValueError(f"the two networks have different tensors: {diff[:5]}")
    out = {}
    for k, a in base.items():
        b = tuned[k]
        if a.shape != b.shape:
            raise ValueError(f"{k}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
        out[k] = (1.0 - alpha) * a.float() + alpha * b.float() if a.is_floating_point() else a.clone()
    return out


def _lineage(base, summary: dict, tuned_run: Path, alpha: float, hardware: str, now: str) -> list:
    """The base's lineage, then the continuation run and the blend."""
    from hirqa_ros.training.release.cards import data_card, run_entry

    manifest = Path(summary["config"]["data"].get("manifest", "data/pristine/manifest.json"))
    tuned_entry = run_entry(summary, data_card(manifest))
    tuned_entry["hardware"] = hardware
    tuned_entry["loss_weights"] = summary.get("loss_weights")
    tuned_entry["sampler"] = summary["config"].get("sampler")
    tuned_entry["note"] = "a continuation of the base; used only through the blend below"
    return [
        *(base.card.get("lineage") or []),
        tuned_entry,
        {
            "run": "blend",
            "track": "weight-space blend (WiSE-FT) of the base model and a continuation trained from it",
            "finished_at": now,
            "alpha": alpha,
            "formula": "(1 - alpha) * base + alpha * continuation, every float tensor",
            "parent": {"name": base.name, "weights_sha256": base.file_sha256("weights")},
            "continuation": {"run": summary["name"], "folder": str(tuned_run)},
            "fault_head": "the base's, unchanged (fit on the base's embedding; measured again on the blend)",
            "hardware": hardware,
        },
    ]


def write(
    base_dir: str | None, tuned_run: Path, alpha: float, out: Path, hardware: str, name: str | None = None
) -> Path:
    """The blended model directory: weights, ONNX, the base's fault head, a lineage entry; thresholds
    not calibrated until :func:`finalize`."""
    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.constants import uncalibrated_thresholds
    from hirqa_ros.training.fit.checkpoint import run_weights
    from hirqa_ros.training.release.model_dir import write_model

    base = load_artifact(base_dir)
    summary = json.loads((tuned_run / "summary.json").read_text())
    sd = blend_state_dicts(dict(base.state_dict()), run_weights(tuned_run)[0], alpha)
    card = {k: v for k, v in base.card.items() if k not in STALE_SECTIONS}
    card["name"] = name or f"{base.variant}-blend"
    card["thresholds"] = uncalibrated_thresholds()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    card["created"] = now
    card["lineage"] = _lineage(base, summary, tuned_run, alpha, hardware, now)
    description = str(card.get("description", "")).split(" Weights: a blend")[0].strip()
    card["description"] = (
        f"{description} Weights: a blend (alpha {alpha}) of the previous model and a continuation "
        "trained from it."
    )
    write_model(out, sd, base.variant, card, fault_head=base.file("fault_head"))
    log.info("wrote %s: alpha %.2f of %s and %s (thresholds not calibrated: run the full-frame eval, then "
             "finalize)", out, alpha, base.path, tuned_run)
    return out

