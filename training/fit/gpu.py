"""The prepared GPU training run (``training/gpu_run.sh``, ``hirqa gpu-run``): a carryable fp16 init from
a CPU checkpoint, training with the device sampler under a wall-time budget, the fp16 weights packed into
<= 15 MiB parts with the metrics, and reassembled on the CPU side into a run folder for ``hirqa release``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import platform
import shutil
import time
from pathlib import Path

log = logging.getLogger("hirqa.gpu_run")

DEFAULT_CONFIG = "config/train_hirqa_s_gpu.yaml"
DEFAULT_INIT = "models/hirqa-s"  # continue from the shipped model (a model dir, a checkpoint or an init file)
PART_PREFIX = "weights.pt.part"
MANIFEST = "gpu_run.json"
COPIED = ("metrics.csv", "val.csv", "config.yaml")  # + MANIFEST, gate.json, train.log, 2 parts: 8 files


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fp16(sd: dict) -> dict:
    """A CPU copy of a state dict with float tensors in fp16."""
    return {
        k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu().clone() for k, v in sd.items()
    }


# ----------------------------------------------------------------------------- init


def make_init(checkpoint: Path, out: Path, hardware: str | None) -> Path:
    """A slim copy of a training checkpoint that ``--init-from`` accepts: the model's weights in fp16
    (no optimizer, no projection), its config, step counts and lineage (~25 MB instead of ~150 MB)."""
    import torch

    from hirqa_ros.training.fit.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint)
    net = {k: v for k, v in ck["net"].items() if k.startswith("model.")}
    slim = {
        "net": fp16(net),
        "config": ck["config"],
        "step": int(ck["step"]),
        "images_seen": int(ck["images_seen"]),
        "elapsed_s": float(ck["elapsed_s"]),
        "lineage": ck.get("lineage") or [],
        "init_from": ck.get("init_from"),
        "parent": ck.get("parent"),
        "world_size": int(ck.get("world_size", 1)),
        "source_checkpoint": str(checkpoint),
        "hardware": hardware,
        "weights": "fp16 (model only)",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(slim, buf)
    out.write_bytes(buf.getvalue())
    log.info("%s: step %d of run %s, %.1f MiB (from %s)", out, slim["step"], ck["config"].get("name"),
             out.stat().st_size / 2**20, checkpoint)
    return out


# ----------------------------------------------------------------------------- train


def check_text_cache(cfg: dict) -> None:
    """The alignment loss needs prompt embeddings: from the cache, or from an encoder if one loads. With
    neither (a bare GPU machine whose cache misses) the term is switched off instead of failing the run."""
    if not float(cfg["losses"].get("align", 0) or 0):
        return
    from hirqa_ros.degradations import DEFAULT_TYPES
    from hirqa_ros.training.data.prompts import prompt_embeddings

    types = cfg["sampler"].get("types") or list(DEFAULT_TYPES)
    try:
        _, info = prompt_embeddings(types, cfg["text"]["cache_dir"], cfg["text"]["encoder"])
        log.info(
            "prompt embeddings: %s (%s)", info.get("path"), "cached" if info.get("cached") else "computed"
        )
    except Exception as exc:
        log.warning("no prompt embeddings (no cache hit, no encoder: %s): align loss switched OFF", exc)
        cfg["losses"]["align"] = 0.0


def environment(device: str) -> dict:
    """Python, torch, CUDA and GPU of this machine, for the run summary."""
    import torch

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "host_cpus": os.cpu_count(),
    }
    if torch.cuda.is_available() and device != "cpu":
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count)
    return env


def gpu_overrides(minutes: float, max_steps: int | None, prefetch: int, smoke: bool) -> dict:
    """Config overrides of a GPU run: the device sampler, the wall-time budget; ``smoke``: tiny batches
    (a CPU rehearsal of the same code path)."""
    over: dict = {"train": {"wall_time_minutes": minutes, "sampler": "device", "prefetch": prefetch},
                  "sampler": {}}
    if max_steps:
        over["train"]["max_steps"] = max_steps
    if smoke:
        over["sampler"].update(ladders=8, per_type=2, crop_sizes=[64, 80])
        over["train"].update(checkpoint_every=5, log_every=2, threads=1)
        over["optim"] = {"warmup_steps": 2}
        over["validation"] = {"types": ["gaublur", "jpeg", "jpeg2000", "low_light", "glare"]}
    return over


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when torch sees one, else cpu; ValueError for cuda without a CUDA device."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device} but torch sees no CUDA device")
    return device


def resolve_init(init: str | None) -> str | None:
    """The init to start from: None for ``none``, or for a path that is not there (from scratch)."""
    if init and init != "none" and not Path(init).exists():
        log.warning("init %s not found: training from scratch", init)
        init = None
    return None if init == "none" else init


def carried_lineage(summary: dict, init: str | None) -> None:
    """The trainer describes the parent run with THIS machine's CPU: use what the init file recorded."""
    import torch

    if not (init and Path(init).is_file() and summary.get("lineage")):
        return
    meta = torch.load(init, map_location="cpu", weights_only=False)
    src = meta.get("source_checkpoint") if isinstance(meta, dict) else None
    if src:
        summary["init_from"] = f"{src} (step {meta.get('step')}; carried as the fp16 copy {init})"
        summary["lineage"][-1]["checkpoint"] = src
        if isinstance(summary.get("parent"), dict):
            summary["parent"]["checkpoint"] = src
    if isinstance(meta, dict) and meta.get("hardware"):
        summary["lineage"][-1]["hardware"] = meta["hardware"]


def train_on_gpu(config: str, work: Path, minutes: float, device: str = "auto", init_from: str | None = None,
                 max_steps: int | None = None, prefetch: int = 2, smoke: bool = False,
                 progress: bool = True) -> dict:
    """One GPU run in ``work`` (the trainer with ``train.sampler: device``); returns its summary (also
    ``work/summary.json``), with the environment and the init file in ``gpu_run``."""
    import torch

    from hirqa_ros.training.data.device_ladders import COMPOSITION_EXCLUDE
    from hirqa_ros.training.fit.checkpoint import CKPT_NAME
    from hirqa_ros.training.fit.config import load_config
    from hirqa_ros.training.fit.trainer import train

    cfg = load_config(config, gpu_overrides(minutes, max_steps, prefetch, smoke))
    if (work / "checkpoints" / CKPT_NAME).exists():
        raise ValueError(f"{work} already holds a run; choose another --work")
    device = resolve_device(device)
    env = environment(device)
    log.info("environment: %s", env)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    check_text_cache(cfg)
    init = resolve_init(init_from)
    log.info("init: %s", init or "from scratch (random init)")
    t0 = time.time()
    summary = train(cfg, work, init_from=init, device=device, progress=progress)
    summary["gpu_run"] = {
        "environment": env,
        "command_wall_s": round(time.time() - t0, 1),
        "sampler": f"hirqa_ros.training.data.device_ladders.DeviceLadderSampler (prefetch {prefetch})",
        "composition_exclude": sorted(COMPOSITION_EXCLUDE),
        "init_file": init,
    }
    carried_lineage(summary, init)
    (work / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


# ----------------------------------------------------------------------------- pack / unpack


def pack(work: Path, out: Path, part_mib: float = 15.0) -> dict:
    """fp16 state dict of ``final.pt`` (or of the last checkpoint, if training was cut short) in parts of
    at most ``part_mib`` MiB, with the metrics and a manifest (sha256 of each part); returns the manifest."""
    import torch

    from hirqa_ros.training.fit.checkpoint import run_weights

    out.mkdir(parents=True, exist_ok=True)
    summary = json.loads((work / "summary.json").read_text()) if (work / "summary.json").is_file() else None
    sd, variant, source, ck = run_weights(work)
    if ck is not None and summary is None:
        keys = ("step", "images_seen", "elapsed_s", "lineage", "init_from", "parent")
        summary = {k: ck.get(k) for k in keys}
        summary.update(config=ck["config"], name=ck["config"].get("name"), val_history=ck.get("val_history"),
                       variant=variant, trunk_init=(ck.get("state") or {}).get("trunk_init"),
                       stop_reason=f"cut short: {source}", finished=False,
                       images_per_s=round(ck["images_seen"] / max(1e-6, ck["elapsed_s"]), 2))
    buf = io.BytesIO()
    torch.save({"model_state_dict": fp16(sd), "variant": variant}, buf)
    blob = buf.getvalue()
    size = int(part_mib * 2**20)
    parts = []
    for i in range(0, len(blob), size):
        name = f"{PART_PREFIX}{i // size:02d}"
        (out / name).write_bytes(blob[i : i + size])
        parts.append({"file": name, "bytes": len(blob[i : i + size]), "sha256": sha256(blob[i : i + size])})
    for name in COPIED:
        if (work / name).is_file():
            shutil.copyfile(work / name, out / name)
    manifest = {
        "weights": {"source": source, "variant": variant, "bytes": len(blob), "sha256": sha256(blob),
                    "parts": parts},
        "summary": summary,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
    log.info("packed %s (%d bytes) into %d part(s) in %s", source, len(blob), len(parts), out)
    return manifest


def unpack(src: Path, run: Path) -> Path:
    """Reassemble the parts (sha256 checked: ValueError on a mismatch) into ``RUN/final.pt`` +
    ``RUN/summary.json`` (+ metrics)."""
    manifest = json.loads((src / MANIFEST).read_text())
    w = manifest["weights"]
    chunks = []
    for p in w["parts"]:
        data = (src / p["file"]).read_bytes()
        if sha256(data) != p["sha256"]:
            raise ValueError(f"{p['file']}: sha256 mismatch")
        chunks.append(data)
    blob = b"".join(chunks)
    if len(blob) != w["bytes"] or sha256(blob) != w["sha256"]:
        raise ValueError(f"reassembled weights do not match the manifest ({len(blob)} bytes)")
    run.mkdir(parents=True, exist_ok=True)
    (run / "final.pt").write_bytes(blob)
    if manifest.get("summary"):
        (run / "summary.json").write_text(json.dumps(manifest["summary"], indent=1, default=str))
    for name in (*COPIED, "train.log", MANIFEST):
        if (src / name).is_file():
            shutil.copyfile(src / name, run / name)
    log.info("%s/final.pt: %d bytes, sha256 %s ok (from %d parts)", run, len(blob), w["sha256"][:16],
             len(w["parts"]))
    return run / "final.pt"
