"""The training loop: ladder batches -> HiRQA objective -> AdamW with warmup + cosine; CPU or CUDA
(autocast, channels-last), DDP under torchrun; atomic checkpoints with every RNG state so ``resume``
continues exactly."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import json
import logging
import math
import os
import platform
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from hirqa_ros.model import EMBED_DIM, HiRQA, canonical_variant
from hirqa_ros.preprocess import MEAN, STD
from hirqa_ros.training.data import LadderSampler, SamplerConfig, load_images
from hirqa_ros.training.losses import LossConfig, hirqa_loss

log = logging.getLogger(__name__)

CKPT_NAME = "last.pt"
DEFAULTS: dict[str, Any] = {
    "name": "hirqa-s",
    "variant": "hirqa-s",
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
    },
    "validation": {"types": None, "crop": 128, "resize_side": 256, "max_images": None, "seed": 0},
}


# ----------------------------------------------------------------------------- config


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | Path | None, overrides: dict | None = None) -> dict:
    """The YAML config merged over :data:`DEFAULTS` (unknown top-level sections are an error)."""
    user = yaml.safe_load(Path(path).read_text()) if path else {}
    unknown = set(user or {}) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{path}: unknown config sections {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    return _merge(_merge(DEFAULTS, user or {}), overrides or {})


# ----------------------------------------------------------------------------- model wrapper


class TrainNet(nn.Module):
    """HiRQA plus the alignment projection (not shipped): one forward for DDP."""

    def __init__(self, variant: str, text_dim: int) -> None:
        super().__init__()
        self.model = HiRQA(variant)
        self.proj = nn.Linear(EMBED_DIM, text_dim) if text_dim else None
        mean = torch.tensor(MEAN).reshape(1, 3, 1, 1)
        std = torch.tensor(STD).reshape(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, x01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        x = (x01 - self.mean) / self.std
        q, emb = self.model.score_and_embed(x)
        return q, emb, (self.proj(emb) if self.proj is not None else None)


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warmup then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))


# ----------------------------------------------------------------------------- distributed


def _dist_setup(device_arg: str | None) -> tuple[int, int, torch.device]:
    """(rank, world, device); initialises torch.distributed from torchrun's env vars when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as tdist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and device_arg != "cpu"
        if use_cuda:
            torch.cuda.set_device(local)
        if not tdist.is_initialized():
            tdist.init_process_group(backend="nccl" if use_cuda else "gloo")
        return rank, world, torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if device_arg and device_arg != "auto":
        return 0, 1, torch.device(device_arg)
    return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ----------------------------------------------------------------------------- checkpoints


def _rng_state() -> dict:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic: write a temp file in the same folder, fsync, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    # our own checkpoint: it holds RNG states and config (python objects), so weights_only is off
    return torch.load(path, map_location="cpu", weights_only=False)


# ----------------------------------------------------------------------------- validation


def make_score_fn(model: HiRQA, device: torch.device, policy: str = "native"):
    """score_fn(list of RGB uint8) -> np.ndarray through the one preprocessing path (hirqa_ros.preprocess)."""
    from hirqa_ros.preprocess import prepare

    def score(frames):
        out = np.zeros(len(frames), np.float64)
        count = np.zeros(len(frames), np.float64)
        with torch.no_grad():
            for batch in prepare(frames, policy):
                s = model(torch.from_numpy(batch.array).to(device)).float().cpu().numpy()
                np.add.at(out, batch.owners, s)
                np.add.at(count, batch.owners, 1.0)
        return out / np.maximum(count, 1)

    return score


def validate(model: HiRQA, device: torch.device, images: list[tuple[str, np.ndarray]], vcfg: dict) -> dict:
    """The synthetic protocol (hirqa_ros.evaluation.synthetic) on held-out photos."""
    from hirqa_ros.evaluation.synthetic import evaluate_model

    was_training = model.training
    model.eval()
    try:
        return evaluate_model(
            make_score_fn(model, device),
            images,
            types=vcfg.get("types"),
            crop=int(vcfg.get("crop", 128)),
            resize_side=int(vcfg.get("resize_side", 256)),
            max_images=vcfg.get("max_images"),
            seed=int(vcfg.get("seed", 0)),
        )
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------- main loop


class _Logs:
    """metrics.csv / val.csv (+ TensorBoard when importable); rank 0 only."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.out = out
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"))
            except Exception:
                self.tb = None

    def row(self, name: str, values: dict) -> None:
        if not self.enabled:
            return
        path = self.out / name
        new = not path.exists()
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(values))
            if new:
                w.writeheader()
            w.writerow(values)
        if self.tb is not None:
            step = values.get("step", 0)
            for k, v in values.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{name.split('.')[0]}/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        return f"{world} x {torch.cuda.get_device_name(device)}"
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), {world} process(es)"


def _init_from_checkpoint(path: Path) -> tuple[dict, list, dict]:
    """Weights of a training checkpoint (``OUT/checkpoints/last.pt``); its run becomes a lineage entry."""
    ck = load_checkpoint(path)
    sd = {k[len("model.") :]: v for k, v in ck["net"].items() if k.startswith("model.")}
    cfg = ck["config"]
    entry = {
        "run": cfg.get("name"),
        "checkpoint": str(path),
        "init": f"from {ck['init_from']}" if ck.get("init_from") else "from scratch (random init)",
        "steps": int(ck["step"]),
        "images_seen": int(ck["images_seen"]),
        "wall_time_min": round(float(ck["elapsed_s"]) / 60.0, 1),
        "hardware": _hardware(torch.device("cpu"), int(ck.get("world_size", 1))),
        "sampler": cfg.get("sampler"),
        "losses": cfg.get("losses"),
        "note": "stopped at this checkpoint; training continued from its weights",
    }
    parent = {"name": cfg.get("name"), "checkpoint": str(path), "step": int(ck["step"])}
    return sd, [*list(ck.get("lineage") or []), entry], parent


def _init_from(path: str) -> tuple[dict, list, dict]:
    """Weights, lineage (list of earlier runs) and identity of a shipped model directory (or of a
    training checkpoint file)."""
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


def train(
    cfg: dict,
    out_dir: str | Path,
    resume: bool = False,
    init_from: str | None = None,
    device: str | None = None,
    stop_at: int | None = None,
    progress: bool = True,
) -> dict:
    """Run (or resume) a training run in ``out_dir``; returns the run summary (also ``summary.json``)."""
    rank, world, dev = _dist_setup(device)
    out = Path(out_dir)
    main = rank == 0
    tcfg, ocfg = cfg["train"], cfg["optim"]
    if dev.type == "cpu" and int(tcfg.get("threads") or 0) > 0:
        torch.set_num_threads(int(tcfg["threads"]))
    seed = int(cfg["seed"])
    random.seed(seed + rank)
    np.random.seed(seed + rank)
    torch.manual_seed(seed + rank)
    variant = canonical_variant(cfg["variant"])
    lcfg = LossConfig.from_dict(cfg["losses"])
    scfg = SamplerConfig.from_dict(cfg["sampler"])

    ckpt_path = out / "checkpoints" / CKPT_NAME
    ckpt = None
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
        ckpt = load_checkpoint(ckpt_path)
        cfg = ckpt["config"]  # the run continues with the config it started with
        tcfg, ocfg = cfg["train"], cfg["optim"]
        lcfg = LossConfig.from_dict(cfg["losses"])
        scfg = SamplerConfig.from_dict(cfg["sampler"])
        log.info("resuming %s at step %d", ckpt_path, ckpt["step"])

    # data
    train_imgs = [im for _, im in load_images(cfg["data"]["train"], int(cfg["data"].get("max_side") or 0))]
    if not train_imgs:
        raise FileNotFoundError(
            f"no training images in {cfg['data']['train']} (run `hirqa prepare-data` first)"
        )
    val_imgs = (
        load_images(cfg["data"]["val"])
        if cfg["data"].get("val") and Path(cfg["data"]["val"]).is_dir()
        else []
    )
    sampler = LadderSampler(train_imgs, scfg, seed=seed * 1000 + rank, device=dev)
    log.info(
        "data: %d train photos, %d val photos, %d distortion types, %d ladders x %d levels per step",
        len(train_imgs),
        len(val_imgs),
        len(sampler.types),
        scfg.ladders,
        len(scfg.levels),
    )

    # text prompts
    text_emb, text_info = None, {}
    if lcfg.align:
        from hirqa_ros.training.text import prompt_embeddings

        text_emb, text_info = prompt_embeddings(
            sampler.types, cfg["text"]["cache_dir"], cfg["text"]["encoder"]
        )
        text_emb = text_emb.to(dev)

    net = TrainNet(variant, int(text_emb.shape[1]) if text_emb is not None else 0)
    lineage: list = []
    parent: dict | None = None
    if init_from and ckpt is None:
        sd, lineage, parent = _init_from(init_from)
        net.model.load_state_dict(sd, strict=True)
        log.info("initialised from %s (%d earlier run(s) in its lineage)", init_from, len(lineage))
    amp = str(tcfg.get("amp", "auto"))
    amp_dtype = None
    if dev.type == "cuda" and amp != "off":
        amp_dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    cl = tcfg.get("channels_last", "auto")
    channels_last = dev.type == "cuda" if cl == "auto" else bool(cl)
    net.to(dev)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    decay, no_decay = [], []
    for p in net.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": float(ocfg["weight_decay"])},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=float(ocfg["lr"]),
        betas=tuple(ocfg.get("betas", (0.9, 0.999))),
    )
    plan = {"total": int(tcfg["max_steps"])}
    warmup = int(ocfg["warmup_steps"])
    min_ratio = float(ocfg["min_lr_ratio"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, plan["total"], warmup, min_ratio))
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

    step, elapsed_before, images_seen, val_history = 0, 0.0, 0, []
    if ckpt is not None:
        net.load_state_dict(ckpt["net"])
        opt.load_state_dict(ckpt["optimizer"])
        plan.update(ckpt["plan"])
        sched.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        step = int(ckpt["step"])
        elapsed_before = float(ckpt["elapsed_s"])
        images_seen = int(ckpt["images_seen"])
        val_history = list(ckpt.get("val_history", []))
        lineage = list(ckpt.get("lineage", []))
        init_from = ckpt.get("init_from")
        parent = ckpt.get("parent")
        sampler.load_state_dict(ckpt["sampler"][rank] if rank < len(ckpt["sampler"]) else ckpt["sampler"][0])
        _set_rng_state(ckpt["rng"][rank] if rank < len(ckpt["rng"]) else ckpt["rng"][0])

    model_for_loss: nn.Module = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model_for_loss = DDP(net, device_ids=[dev.index] if dev.type == "cuda" else None)

    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    logs = _Logs(out, main)
    budget_s = float(tcfg.get("wall_time_minutes") or 0) * 60.0
    max_steps = int(plan["total"])
    end_step = min(max_steps, int(stop_at)) if stop_at else max_steps
    ck_every = int(tcfg["checkpoint_every"])
    log_every = int(tcfg["log_every"])
    val_every = int(tcfg.get("val_every") or 0)
    hardware = _hardware(dev, world)

    def gather_states(obj: Any) -> list:
        if world == 1:
            return [obj]
        import torch.distributed as tdist

        objs = [None] * world
        tdist.all_gather_object(objs, obj)
        return objs

    def checkpoint(final: bool = False) -> None:
        samplers = gather_states(sampler.state_dict())
        rngs = gather_states(_rng_state())
        if not main:
            return
        save_checkpoint(
            ckpt_path,
            {
                "step": step,
                "net": net.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "plan": dict(plan),
                "sampler": samplers,
                "rng": rngs,
                "config": cfg,
                "elapsed_s": elapsed,
                "images_seen": images_seen,
                "val_history": val_history,
                "lineage": lineage,
                "init_from": init_from,
                "parent": parent,
                "world_size": world,
                "final": final,
            },
        )

    def run_validation() -> None:
        if not (main and val_imgs):
            return
        t0 = time.time()
        summ = validate(net.model, dev, val_imgs, cfg["validation"])
        row = {"step": step, **{f"pooled_{k}": round(v, 4) for k, v in summ["pooled"].items()}}
        for g, v in summ["per_group"].items():
            row[f"{g}_auroc"] = round(v["auroc"], 4)
            row[f"{g}_ladder_srocc"] = round(v["ladder_srocc"], 4)
        row["seconds"] = round(time.time() - t0, 1)
        val_history.append(row)
        logs.row("val.csv", row)
        log.info(
            "validation at step %d: pooled ladder SROCC %.3f, SROCC %.3f, AUROC %.3f (%.0f s)",
            step,
            summ["pooled"]["ladder_srocc"],
            summ["pooled"]["srocc"],
            summ["pooled"]["auroc"],
            row["seconds"],
        )

    net.train()
    t_start = time.time()
    elapsed = elapsed_before
    bar = None
    if main and progress:
        from tqdm import tqdm

        bar = tqdm(total=end_step, initial=step, desc="train", unit="step", dynamic_ncols=True)
    rate_t0, rate_imgs0, rate_step0 = time.time(), images_seen, step
    stop_reason = "max_steps"
    while step < end_step:
        batch = sampler.next()
        x = batch.images
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            q, emb, proj = model_for_loss(x)
        b, n = batch.shape
        loss, terms = hirqa_loss(
            lcfg,
            q.float().reshape(b, n),
            emb.float().reshape(b, n, -1),
            None if proj is None else proj.float(),
            batch.levels,
            batch.group,
            batch.pristine_base,
            batch.valid,
            text_emb,
            batch.prompt_target,
        )
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(net.parameters(), float(ocfg["grad_clip"]))
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        sched.step()
        step += 1
        images_seen += x.shape[0] * world
        elapsed = elapsed_before + (time.time() - t_start)
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"non-finite loss at step {step}: {terms}")
        if budget_s and step >= 30 and (step % 50 == 0 or step == 30) and not stop_at:
            # re-plan the cosine schedule so that it ends when the wall-time budget does
            rate = (step - (ckpt["step"] if ckpt else 0)) / max(1e-6, time.time() - t_start)
            planned = step + int(rate * max(0.0, budget_s - elapsed))
            plan["total"] = max(step + 1, min(max_steps, planned))
        if main and step % log_every == 0:
            now = time.time()
            ips = (images_seen - rate_imgs0) / max(1e-6, now - rate_t0)
            sps = (step - rate_step0) / max(1e-6, now - rate_t0)
            rate_t0, rate_imgs0, rate_step0 = now, images_seen, step
            row = {
                "step": step,
                "elapsed_s": round(elapsed, 1),
                "lr": sched.get_last_lr()[0],
                "loss": float(loss.detach()),
                **terms,
                "grad_norm": float(gnorm),
                "images_per_s": round(ips, 2),
                "steps_per_s": round(sps, 4),
                "planned_steps": plan["total"],
            }
            logs.row("metrics.csv", row)
            if bar is not None:
                bar.set_postfix(
                    {
                        "loss": f"{float(loss.detach()):.3f}",
                        **{k: f"{v:.3f}" for k, v in terms.items()},
                        "img/s": f"{ips:.1f}",
                    },
                    refresh=False,
                )
        if bar is not None:
            bar.update(1)
        if val_every and step % val_every == 0 and step < end_step:
            run_validation()
        if step % ck_every == 0:
            checkpoint()
        if budget_s and elapsed >= budget_s:
            stop_reason = "wall_time"
            break
        if step >= plan["total"] and budget_s:
            stop_reason = "planned_steps"
            break
    if bar is not None:
        bar.close()
    finished = step >= max_steps or stop_reason != "max_steps"
    if finished:
        run_validation()
    checkpoint(final=finished)
    summary = {
        "name": cfg["name"],
        "variant": variant,
        "step": step,
        "finished": finished,
        "stop_reason": stop_reason,
        "elapsed_s": round(elapsed, 1),
        "images_seen": images_seen,
        "images_per_s": round(images_seen / max(1e-6, elapsed), 2),
        "hardware": hardware,
        "world_size": world,
        "device": str(dev),
        "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "off",
        "channels_last": channels_last,
        "text_encoder": text_info.get("encoder", "none"),
        "loss_weights": {k: v for k, v in lcfg.__dict__.items() if k != "extra"},
        "sampler": {k: (list(v) if isinstance(v, tuple) else v) for k, v in scfg.__dict__.items()},
        "optim": ocfg,
        "planned_steps": plan["total"],
        "val_history": val_history,
        "init_from": init_from,
        "parent": parent,
        "lineage": lineage,
        "finished_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": cfg,
    }
    if main:
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        if finished:
            torch.save({"model_state_dict": net.model.state_dict(), "variant": variant}, out / "final.pt")
    logs.close()
    if world > 1:
        import torch.distributed as tdist

        tdist.barrier()
    return summary
