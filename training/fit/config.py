"""The training configuration: defaults, and a YAML file merged over them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "name": "hirqa-s",
    "variant": "hirqa-s",
    "trunk_init": "random",  # or imagenet: the trunk starts from its installed ImageNet weights (trunks.py)
    "distill_from": None,  # losses.distill: the teacher's model directory (another trunk's model)
    "seed": 0,
    "data": {
        "train": "data/pristine/train",
        "val": "data/pristine/val",
        "manifest": "data/pristine/manifest.json",
        "max_side": 1600,
    },
    "sampler": {},
    "losses": {},
    "text": {"encoder": "auto", "cache_dir": "data/cache/text"},
    "optim": {
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "warmup_steps": 100,
        "min_lr_ratio": 0.02,
        "grad_clip": 5.0,
        "betas": [0.9, 0.999],
    },
    "train": {
        "max_steps": 1000,
        "wall_time_minutes": 0,
        "checkpoint_every": 100,
        "log_every": 10,
        "val_every": 500,
        "threads": 0,
        "amp": "auto",
        "channels_last": "auto",
        "sampler": "host",  # where ladders are drawn: host (numpy/OpenCV crops) or device (the GPU sampler)
        "prefetch": 2,  # device sampler: batches drawn ahead by a thread (0: none)
    },
    "validation": {"types": None, "crop": 128, "resize_side": 256, "max_images": None, "seed": 0},
}


def merge(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base``, section by section."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | Path | None, overrides: dict | None = None) -> dict:
    """The YAML config merged over :data:`DEFAULTS` (unknown top-level sections are an error)."""
    user = yaml.safe_load(Path(path).read_text()) if path else {}
    unknown = set(user or {}) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{path}: unknown config sections {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    return merge(merge(DEFAULTS, user or {}), overrides or {})
