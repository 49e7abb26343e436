"""Training checkpoints: atomic save with every RNG state (so a resumed run continues exactly), and
the lineage of a run started from a shipped model or from another run's checkpoint."""

from __future__ import annotations

import io
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

from hirqa_ros.files import atomic_write_bytes

CKPT_NAME = "last.pt"


def rng_state() -> dict:
    """The python, numpy, torch (and CUDA) generator states of this process."""
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic and durable: a temporary file in the same folder, fsync, then a rename."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getbuffer(), fsync=True)


def load_checkpoint(path: Path) -> dict:
    # our own checkpoint: it holds RNG states and config (python objects), so weights_only is off
    return torch.load(path, map_location="cpu", weights_only=False)


def hardware(device: torch.device, world: int) -> str:
    """What a run trained on, for summaries and lineage."""
    if device.type == "cuda":
        return f"{world} x {torch.cuda.get_device_name(device)}"
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), {world} process(es)"


def model_weights(ck: dict) -> dict:
    """The HiRQA weights (authors' key names) of a training checkpoint (its ``net`` minus the projection)."""
    return {k[len("model.") :]: v for k, v in ck["net"].items() if k.startswith("model.")}


def run_weights(run: Path) -> tuple[dict, str, str, dict | None]:
    """(weights, variant, where from, the checkpoint or None) of a run folder: ``final.pt``, else the
    last checkpoint (a run cut short)."""
    run = Path(run)
    if (run / "final.pt").is_file():
        final = torch.load(run / "final.pt", map_location="cpu", weights_only=True)
        return final["model_state_dict"], final["variant"], "final.pt", None
    path = run / "checkpoints" / CKPT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{run} holds neither final.pt nor checkpoints/{CKPT_NAME}")
    ck = load_checkpoint(path)
    source = f"checkpoints/{CKPT_NAME} (step {ck['step']}, run cut short)"
    return model_weights(ck), ck["config"]["variant"], source, ck


def _init_from_checkpoint(path: Path) -> tuple[dict, list, dict]:
    """Weights of a training checkpoint (``OUT/checkpoints/last.pt``); its run becomes a lineage entry."""
    ck = load_checkpoint(path)
    sd = model_weights(ck)
    cfg = ck["config"]
    entry = {
        "run": cfg.get("name"),
        "checkpoint": str(path),
        "init": f"from {ck['init_from']}" if ck.get("init_from") else "from scratch (random init)",
        "steps": int(ck["step"]),
        "images_seen": int(ck["images_seen"]),
        "wall_time_min": round(float(ck["elapsed_s"]) / 60.0, 1),
        "hardware": hardware(torch.device("cpu"), int(ck.get("world_size", 1))),
        "sampler": cfg.get("sampler"),
        "losses": cfg.get("losses"),
        "note": "stopped at this checkpoint; training continued from its weights",
    }
    parent = {"name": cfg.get("name"), "checkpoint": str(path), "step": int(ck["step"])}
    return sd, [*list(ck.get("lineage") or []), entry], parent


def init_weights(path: str) -> tuple[dict, list, dict]:
    """Weights, lineage (list of earlier runs) and identity of a shipped model directory (or of a
    training checkpoint file) to start a run from."""
    from hirqa_ros.artifacts import load_artifact

    if Path(path).is_file() and Path(path).suffix == ".pt":
        return _init_from_checkpoint(Path(path))
    art = load_artifact(path)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in art.state_dict().items()}
    lineage = art.card.get("lineage") or []
    if isinstance(lineage, dict):
        lineage = [lineage]
    parent = {
        "name": art.name,
        "path": str(art.path),
        "weights_sha256": art.file_sha256("weights"),
        "created": art.card.get("created"),
    }
    return sd, list(lineage), parent
