"""The training loop: ladder batches -> HiRQA objective -> AdamW with warmup + cosine; CPU or CUDA
(autocast, channels-last), DDP under torchrun; atomic checkpoints with every RNG state so ``resume``
continues exactly.

``build_run`` sets a run up (fresh, resumed or initialised from a model), ``train_step`` does one
optimisation step, ``fit`` loops, checkpoints and validates; everything that changes while training
lives in :class:`RunState` (saved in the checkpoint)."""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from hirqa_ros.files import write_json
from hirqa_ros.model import EMBED_DIM, HiRQA, canonical_variant, load_imagenet_trunk
from hirqa_ros.training.data.device_ladders import DeviceLadderSampler
from hirqa_ros.training.data.ladders import LadderSampler, SamplerConfig
from hirqa_ros.training.data.photos import load_images
from hirqa_ros.training.fit.checkpoint import (
    CKPT_NAME,
    hardware,
    init_weights,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from hirqa_ros.training.fit.config import DEFAULTS, load_config, merge
from hirqa_ros.training.fit.losses import LossConfig, hirqa_loss, teacher_loss
from hirqa_ros.trunks import trunk_normalisation

__all__ = ["CKPT_NAME", "DEFAULTS", "RunState", "TrainNet", "fit", "load_checkpoint", "load_config",
           "lr_factor", "train", "train_step", "validate"]

log = logging.getLogger(__name__)

#: train settings a resumed session may change (``train(session=...)``, ``hirqa train --threads``)
SESSION_KEYS = ("threads", "log_every", "checkpoint_every")


class TrainNet(nn.Module):
    """HiRQA plus the alignment projection (not shipped): one forward for DDP."""

    def __init__(self, variant: str, text_dim: int) -> None:
        super().__init__()
        self.model = HiRQA(variant)
        self.proj = nn.Linear(EMBED_DIM, text_dim) if text_dim else None
        norm = trunk_normalisation(variant)  # the trunk's own statistics (the card records them)
        mean = torch.tensor(norm.mean).reshape(1, 3, 1, 1)
        std = torch.tensor(norm.std).reshape(1, 3, 1, 1)
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


# ----------------------------------------------------------------------------- validation


def validation_scorer(model: HiRQA, device: torch.device):
    """The runtime ``Scorer`` around the model being trained (torch backend, fp32, native input)."""
    from hirqa_ros.artifacts import ModelArtifact
    from hirqa_ros.backends.torch_backend import TorchBackend
    from hirqa_ros.scorer import Scorer

    card = {"name": "in-training", "variant": getattr(model, "variant", "hirqa-s"), "input_policy": "native"}
    backend = TorchBackend(model=model, device=str(device), precision="fp32", cuda_graphs=False)
    return Scorer(ModelArtifact(Path("."), card), backend, "native")


def validate(model: HiRQA, device: torch.device, images: list[tuple[str, np.ndarray]], vcfg: dict) -> dict:
    """The synthetic protocol (hirqa_ros.evaluation.synthetic) on held-out photos, each image judged through
    the pipeline as ``hirqa eval`` judges it (``evaluation.model_fn``: the runtime Scorer's preprocessing,
    averaging and batching; validation reads the scores only, so the thresholds are placeholders)."""
    from hirqa_ros.decision import Thresholds
    from hirqa_ros.evaluation.model_fn import evaluation_monitor, pipeline_score_fn
    from hirqa_ros.evaluation.synthetic import evaluate_model

    was_training = model.training
    try:
        scorer = validation_scorer(model, device)  # puts the model in eval mode
        return evaluate_model(
            pipeline_score_fn(evaluation_monitor(scorer, thresholds=Thresholds())),
            images,
            types=vcfg.get("types"),
            crop=int(vcfg.get("crop", 128)),
            resize_side=int(vcfg.get("resize_side", 256)),
            max_images=vcfg.get("max_images"),
            seed=int(vcfg.get("seed", 0)),
        )
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------- run state


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


@dataclass
class RunState:
    """What changes while a run trains (restored from the checkpoint on resume)."""

    step: int = 0
    planned_steps: int = 0  # where the cosine schedule ends; re-planned under a wall-time budget
    elapsed_s: float = 0.0
    images_seen: int = 0
    val_history: list = field(default_factory=list)
    lineage: list = field(default_factory=list)
    init_from: str | None = None
    parent: dict | None = None
    trunk_init: str | None = None  # where the trunk's starting weights came from (ImageNet), if not init_from
    distilled_from: dict | None = None  # the teacher of ``losses.distill`` (name, variant, path, weights)


@dataclass
class Run:
    """A set-up run: configuration, model, optimiser, sampler and state (see :func:`build_run`)."""

    cfg: dict
    out: Path
    rank: int
    world: int
    dev: torch.device
    net: TrainNet
    model_for_loss: nn.Module
    opt: torch.optim.Optimizer
    scaler: Any
    sampler: Any
    lcfg: LossConfig
    scfg: SamplerConfig
    text_emb: torch.Tensor | None
    text_info: dict
    amp_dtype: torch.dtype | None
    channels_last: bool
    val_imgs: list
    state: RunState
    resumed_at: int = 0  # step the run was resumed at (0 for a fresh run)
    teacher: nn.Module | None = None  # frozen teacher of the ``keep`` or ``distill`` loss (None when off)
    stop_signal: int | None = None  # SIGINT/SIGTERM received: stop after the current step

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoints" / CKPT_NAME

    def set_lr(self) -> float:
        """The learning rate of the current step, from the schedule and the run state."""
        o = self.cfg["optim"]
        lr = float(o["lr"]) * lr_factor(self.state.step, self.state.planned_steps, int(o["warmup_steps"]),
                                        float(o["min_lr_ratio"]))
        for g in self.opt.param_groups:
            g["lr"] = lr * float(g.get("lr_scale", 1.0))
        return lr


def _seed(cfg: dict, rank: int) -> None:
    seed = int(cfg["seed"])
    random.seed(seed + rank)
    np.random.seed(seed + rank)
    torch.manual_seed(seed + rank)


def _optimizer(net: TrainNet, ocfg: dict) -> torch.optim.Optimizer:
    """AdamW, no weight decay on biases and norms; ``optim.trunk_lr_scale`` (< 1 for a pretrained trunk)
    scales the trunk's learning rate (kept in its parameter groups as ``lr_scale``)."""
    scale = float(ocfg.get("trunk_lr_scale", 1.0))
    trunk = {id(p) for p in net.model.backbone.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for p in net.parameters():
        groups.setdefault((scale != 1.0 and id(p) in trunk, p.ndim > 1), []).append(p)
    wd = float(ocfg["weight_decay"])
    return torch.optim.AdamW(
        [{"params": groups[k], "weight_decay": wd if k[1] else 0.0, "lr_scale": scale if k[0] else 1.0}
         for k in ((False, True), (False, False), (True, True), (True, False)) if k in groups],
        lr=float(ocfg["lr"]),
        betas=tuple(ocfg.get("betas", (0.9, 0.999))),
    )


def _load_images(cfg: dict) -> tuple[list[np.ndarray], list[tuple[str, np.ndarray]]]:
    train_imgs = [im for _, im in load_images(cfg["data"]["train"], int(cfg["data"].get("max_side") or 0))]
    if not train_imgs:
        raise FileNotFoundError(
            f"no training images in {cfg['data']['train']} (run `hirqa prepare-data` first)")
    val = cfg["data"].get("val")
    return train_imgs, (load_images(val) if val and Path(val).is_dir() else [])


def make_sampler(tcfg: dict, images: list[np.ndarray], scfg: SamplerConfig, seed: int,
                 dev: torch.device) -> LadderSampler:
    """The ladder sampler that ``train.sampler`` names: ``host`` (crops with numpy/OpenCV, distortions
    on ``dev``) or ``device`` (photos resident on ``dev``, ``train.prefetch`` batches drawn ahead)."""
    kind = str(tcfg.get("sampler") or "host")
    if kind == "host":
        return LadderSampler(images, scfg, seed=seed, device=dev)
    if kind == "device":
        return DeviceLadderSampler(images, scfg, seed=seed, device=dev, prefetch=int(tcfg.get("prefetch", 2)))
    raise ValueError(f"train.sampler must be host or device, not {kind!r}")


def build_run(cfg: dict, out_dir: str | Path, resume: bool = False, init_from: str | None = None,
              device: str | None = None, session: dict | None = None) -> Run:
    """Everything a run needs: fresh, initialised from ``init_from``, or resumed from the checkpoint in
    ``out_dir`` (``session``: new values of :data:`SESSION_KEYS`). Long, but a straight sequence of
    set-up steps in the order the RNG states need."""
    rank, world, dev = _dist_setup(device)
    out = Path(out_dir)
    ckpt = None
    if resume:
        path = out / "checkpoints" / CKPT_NAME
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        ckpt = load_checkpoint(path)
        # the run continues with the config it started with; only this session's settings are new
        new = {k: v for k, v in (session or {}).items() if k in SESSION_KEYS}
        cfg = merge(ckpt["config"], {"train": new})
        log.info("resuming %s at step %d", path, ckpt["step"])
    tcfg = cfg["train"]
    if dev.type == "cpu" and int(tcfg.get("threads") or 0) > 0:
        torch.set_num_threads(int(tcfg["threads"]))
    _seed(cfg, rank)
    lcfg, scfg = LossConfig.from_dict(cfg["losses"]), SamplerConfig.from_dict(cfg["sampler"])
    train_imgs, val_imgs = _load_images(cfg)
    sampler = make_sampler(tcfg, train_imgs, scfg, int(cfg["seed"]) * 1000 + rank, dev)
    log.info("data: %d train photos, %d val photos, %d distortion types, %d ladders x %d levels per step",
             len(train_imgs), len(val_imgs), len(sampler.types), scfg.ladders, len(scfg.levels))
    text_emb, text_info = None, {}
    if lcfg.align:
        from hirqa_ros.training.data.prompts import prompt_embeddings

        text_emb, text_info = prompt_embeddings(sampler.types, cfg["text"]["cache_dir"],
                                                cfg["text"]["encoder"])
        text_emb = text_emb.to(dev)

    net = TrainNet(canonical_variant(cfg["variant"]), int(text_emb.shape[1]) if text_emb is not None else 0)
    state = RunState(planned_steps=int(tcfg["max_steps"]), init_from=init_from)
    init_sd = None
    if init_from and ckpt is None:
        init_sd, state.lineage, state.parent = init_weights(init_from)
        try:
            net.model.load_state_dict(init_sd, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"--init-from {init_from}: its weights do not fit variant {cfg['variant']!r} "
                             f"(another trunk?): {str(exc).splitlines()[0]}") from None
        log.info("initialised from %s (%d earlier run(s) in its lineage)", init_from, len(state.lineage))
    elif ckpt is None and str(cfg.get("trunk_init") or "random") == "imagenet":
        state.trunk_init = f"ImageNet: {load_imagenet_trunk(net.model)}"
        log.info("trunk initialised from %s", state.trunk_init)
    elif str(cfg.get("trunk_init") or "random") not in ("random", "imagenet"):
        raise ValueError(f"trunk_init must be random or imagenet, not {cfg.get('trunk_init')!r}")
    amp = str(tcfg.get("amp", "auto"))
    amp_dtype = None
    if dev.type == "cuda" and amp != "off":
        amp_dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    cl = tcfg.get("channels_last", "auto")
    channels_last = dev.type == "cuda" if cl == "auto" else bool(cl)
    net.to(dev)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    opt = _optimizer(net, cfg["optim"])
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    if ckpt is not None:
        net.load_state_dict(ckpt["net"])
        opt.load_state_dict(ckpt["optimizer"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        state = _restored_state(ckpt)
        sampler.load_state_dict(ckpt["sampler"][rank] if rank < len(ckpt["sampler"]) else ckpt["sampler"][0])
        set_rng_state(ckpt["rng"][rank] if rank < len(ckpt["rng"]) else ckpt["rng"][0])

    teacher = _teacher_of(cfg, lcfg, state, init_sd, dev, channels_last)
    model_for_loss: nn.Module = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model_for_loss = DDP(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    return Run(cfg, out, rank, world, dev, net, model_for_loss, opt, scaler, sampler, lcfg, scfg, text_emb,
               text_info, amp_dtype, channels_last, val_imgs, state, resumed_at=state.step, teacher=teacher)


def _teacher_of(cfg: dict, lcfg: LossConfig, state: RunState, init_sd: dict | None, dev: torch.device,
                channels_last: bool) -> TrainNet | None:
    """The frozen teacher of ``losses.keep`` (the model the run started from) or ``losses.distill`` (the
    model directory ``distill_from``), None when both are off."""
    if lcfg.keep and lcfg.distill:
        raise ValueError("losses.keep and losses.distill each bring a teacher: set one of them")
    if lcfg.keep:
        if not state.init_from:
            raise ValueError("losses.keep needs a run that starts from a model (--init-from)")
        sd = init_sd if init_sd is not None else init_weights(state.init_from)[0]
        log.info("keep loss: scores and embeddings held near %s", state.init_from)
        return _frozen(TrainNet(canonical_variant(cfg["variant"]), 0), sd, dev, channels_last)
    if not lcfg.distill:
        return None
    if not cfg.get("distill_from"):
        raise ValueError("losses.distill needs distill_from: the teacher's model directory (--teacher DIR)")
    return _distill_teacher(str(cfg["distill_from"]), state, dev, channels_last)


def _distill_teacher(model_dir: str, state: RunState, dev: torch.device, channels_last: bool) -> TrainNet:
    """The frozen model of ``model_dir`` (any trunk), recorded in the run's state for the card."""
    from hirqa_ros.artifacts import load_artifact

    variant = canonical_variant(load_artifact(model_dir).variant)
    sd, _, parent = init_weights(model_dir)
    state.distilled_from = {**parent, "variant": variant}
    log.info("distillation: scores and embeddings learned from %s (%s)", parent["name"], variant)
    return _frozen(TrainNet(variant, 0), sd, dev, channels_last)


def _frozen(teacher: TrainNet, sd: dict, dev: torch.device, channels_last: bool) -> TrainNet:
    """``teacher`` with weights ``sd``, frozen. Train mode like the student: both normalise with the
    batch's statistics, so the loss compares like with like (an eval-mode copy of the initial model
    made the keep loss pull batch-statistics outputs onto running statistics)."""
    teacher.model.load_state_dict(sd, strict=True)
    teacher.to(dev).train().requires_grad_(False)
    if channels_last:
        teacher.to(memory_format=torch.channels_last)
    return teacher


def _restored_state(ckpt: dict) -> RunState:
    saved = ckpt.get("state")
    if saved is not None:
        return RunState(**saved)
    # checkpoints written before RunState existed
    return RunState(step=int(ckpt["step"]), planned_steps=int(ckpt["plan"]["total"]),
                    elapsed_s=float(ckpt["elapsed_s"]), images_seen=int(ckpt["images_seen"]),
                    val_history=list(ckpt.get("val_history", [])), lineage=list(ckpt.get("lineage", [])),
                    init_from=ckpt.get("init_from"), parent=ckpt.get("parent"))


# ----------------------------------------------------------------------------- steps


def train_step(run: Run, batch: Any) -> tuple[torch.Tensor, dict, float]:
    """One optimisation step on one ladder batch; returns (loss, loss terms, gradient norm)."""
    run.set_lr()
    x = batch.images
    if run.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type=run.dev.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None):
        q, emb, proj = run.model_for_loss(x)
    b, n = batch.shape
    loss, terms = hirqa_loss(
        run.lcfg, q.float().reshape(b, n), emb.float().reshape(b, n, -1),
        None if proj is None else proj.float(), batch.levels, batch.group, batch.pristine_base, batch.valid,
        run.text_emb, batch.prompt_target,
    )
    if run.teacher is not None:
        with torch.no_grad(), torch.autocast(device_type=run.dev.type, dtype=run.amp_dtype,
                                             enabled=run.amp_dtype is not None):
            q0, emb0, _ = run.teacher(x)
        term = "keep" if run.lcfg.keep else "distill"
        t = teacher_loss(q, emb, q0, emb0)
        loss = loss + getattr(run.lcfg, term) * t
        terms[term] = float(t.detach())
    run.opt.zero_grad(set_to_none=True)
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        run.scaler.unscale_(run.opt)
    else:
        loss.backward()
    gnorm = torch.nn.utils.clip_grad_norm_(run.net.parameters(), float(run.cfg["optim"]["grad_clip"]))
    if run.scaler is not None:
        run.scaler.step(run.opt)
        run.scaler.update()
    else:
        run.opt.step()
    run.state.step += 1
    run.state.images_seen += x.shape[0] * run.world
    if not math.isfinite(float(loss.detach())):
        raise FloatingPointError(f"non-finite loss at step {run.state.step}: {terms}")
    return loss, terms, float(gnorm)


def _gather(run: Run, obj: Any) -> list:
    if run.world == 1:
        return [obj]
    import torch.distributed as tdist

    objs = [None] * run.world
    tdist.all_gather_object(objs, obj)
    return objs


def save_run(run: Run, final: bool = False) -> None:
    """Checkpoint the run (every rank's sampler and RNG state; written by rank 0)."""
    samplers, rngs = _gather(run, run.sampler.state_dict()), _gather(run, rng_state())
    if not run.main:
        return
    s = run.state
    save_checkpoint(run.ckpt_path, {
        "step": s.step, "net": run.net.state_dict(), "optimizer": run.opt.state_dict(),
        "scheduler": {"planned_steps": s.planned_steps, "lr": run.opt.param_groups[0]["lr"]},
        "scaler": run.scaler.state_dict() if run.scaler is not None else None,
        "plan": {"total": s.planned_steps}, "sampler": samplers, "rng": rngs, "config": run.cfg,
        "elapsed_s": s.elapsed_s, "images_seen": s.images_seen, "val_history": s.val_history,
        "lineage": s.lineage, "init_from": s.init_from, "parent": s.parent, "world_size": run.world,
        "final": final, "state": asdict(s),
    })


def run_validation(run: Run, logs: _Logs) -> None:
    if not (run.main and run.val_imgs):
        return
    t0 = time.time()
    summ = validate(run.net.model, run.dev, run.val_imgs, run.cfg["validation"])
    row = {"step": run.state.step, **{f"pooled_{k}": round(v, 4) for k, v in summ["pooled"].items()}}
    for g, v in summ["per_group"].items():
        row[f"{g}_auroc"] = round(v["auroc"], 4)
        row[f"{g}_ladder_srocc"] = round(v["ladder_srocc"], 4)
    row["seconds"] = round(time.time() - t0, 1)
    run.state.val_history.append(row)
    logs.row("val.csv", row)
    p = summ["pooled"]
    log.info("validation at step %d: pooled ladder SROCC %.3f, SROCC %.3f, AUROC %.3f (%.0f s)",
             run.state.step, p["ladder_srocc"], p["srocc"], p["auroc"], row["seconds"])


def _replan(run: Run, budget_s: float, t_start: float, max_steps: int) -> None:
    """Re-plan the cosine schedule so that it ends when the wall-time budget does."""
    s = run.state
    rate = (s.step - run.resumed_at) / max(1e-6, time.time() - t_start)
    planned = s.step + int(rate * max(0.0, budget_s - s.elapsed_s))
    s.planned_steps = max(s.step + 1, min(max_steps, planned))


class _Meter:
    """images/s and steps/s between two log rows."""

    def __init__(self, state: RunState) -> None:
        self.t, self.images, self.step = time.time(), state.images_seen, state.step

    def rates(self, state: RunState) -> tuple[float, float]:
        now = time.time()
        dt_s = max(1e-6, now - self.t)
        ips, sps = (state.images_seen - self.images) / dt_s, (state.step - self.step) / dt_s
        self.t, self.images, self.step = now, state.images_seen, state.step
        return ips, sps


def fit(run: Run, logs: _Logs, stop_at: int | None = None, progress: bool = True,
        session_s: float = 0.0) -> tuple[str, bool]:
    """Train until the planned steps, ``stop_at``, the wall-time budget, the re-planned end, ``session_s``
    seconds of this session or a stop signal; returns (why it stopped, whether the run is finished)."""
    tcfg, s = run.cfg["train"], run.state
    budget_s = float(tcfg.get("wall_time_minutes") or 0) * 60.0
    max_steps = int(s.planned_steps)
    end_step = min(max_steps, int(stop_at)) if stop_at else max_steps
    val_every = int(tcfg.get("val_every") or 0)
    run.net.train()
    t_start, elapsed_before = time.time(), s.elapsed_s
    bar = None
    if run.main and progress:
        from tqdm import tqdm

        bar = tqdm(total=end_step, initial=s.step, desc="train", unit="step", dynamic_ncols=True)
    meter = _Meter(s)
    stop_reason = "max_steps"
    while s.step < end_step:
        loss, terms, gnorm = train_step(run, run.sampler.next())
        s.elapsed_s = elapsed_before + (time.time() - t_start)
        if budget_s and s.step >= 30 and (s.step % 50 == 0 or s.step == 30) and not stop_at:
            _replan(run, budget_s, t_start, max_steps)
        if run.main and s.step % int(tcfg["log_every"]) == 0:
            _log_row(run, logs, bar, loss, terms, gnorm, meter)
        if bar is not None:
            bar.update(1)
        if val_every and s.step % val_every == 0 and s.step < end_step:
            run_validation(run, logs)
        if s.step % int(tcfg["checkpoint_every"]) == 0:
            save_run(run)
        if budget_s and s.elapsed_s >= budget_s:
            stop_reason = "wall_time"
            break
        if run.stop_signal is not None or (session_s and time.time() - t_start >= session_s):
            stop_reason = "signal" if run.stop_signal is not None else "session_time"
            break
        if s.step >= s.planned_steps and budget_s:
            stop_reason = "planned_steps"
            break
    if bar is not None:
        bar.close()
    return stop_reason, s.step >= max_steps or stop_reason in ("wall_time", "planned_steps")


def _log_row(run: Run, logs: _Logs, bar: Any, loss: torch.Tensor, terms: dict, gnorm: float,
             meter: _Meter) -> None:
    ips, sps = meter.rates(run.state)
    s = run.state
    logs.row("metrics.csv", {
        "step": s.step, "elapsed_s": round(s.elapsed_s, 1), "lr": run.opt.param_groups[0]["lr"],
        "loss": float(loss.detach()), **terms, "grad_norm": gnorm, "images_per_s": round(ips, 2),
        "steps_per_s": round(sps, 4), "planned_steps": s.planned_steps,
    })
    if bar is not None:
        post = {"loss": f"{float(loss.detach()):.3f}", **{k: f"{v:.3f}" for k, v in terms.items()},
                "img/s": f"{ips:.1f}"}
        bar.set_postfix(post, refresh=False)
    else:  # no progress bar (logs of a background run): progress and ETA as a log line
        left = max(0, s.planned_steps - s.step) / max(sps, 1e-9)
        log.info("step %d/%d (%.0f %%), loss %.4f, %.1f images/s, %d images seen, ETA %s", s.step,
                 s.planned_steps, 100.0 * s.step / max(1, s.planned_steps), float(loss.detach()), ips,
                 s.images_seen, str(dt.timedelta(seconds=round(left))) if sps > 0 else "?")


def _summary(run: Run, stop_reason: str, finished: bool) -> dict:
    s = run.state
    return {
        "name": run.cfg["name"],
        "variant": canonical_variant(run.cfg["variant"]),
        "step": s.step,
        "finished": finished,
        "stop_reason": stop_reason,
        "stop_signal": run.stop_signal,
        "elapsed_s": round(s.elapsed_s, 1),
        "images_seen": s.images_seen,
        "images_per_s": round(s.images_seen / max(1e-6, s.elapsed_s), 2),
        "hardware": hardware(run.dev, run.world),
        "world_size": run.world,
        "device": str(run.dev),
        "amp": str(run.amp_dtype).replace("torch.", "") if run.amp_dtype else "off",
        "channels_last": run.channels_last,
        "text_encoder": run.text_info.get("encoder", "none"),
        "loss_weights": {k: v for k, v in run.lcfg.__dict__.items() if k != "extra"},
        "sampler": {k: (list(v) if isinstance(v, tuple) else v) for k, v in run.scfg.__dict__.items()},
        "optim": run.cfg["optim"],
        "planned_steps": s.planned_steps,
        "val_history": s.val_history,
        "init_from": s.init_from,
        "trunk_init": s.trunk_init,
        "distilled_from": s.distilled_from,
        "parent": s.parent,
        "lineage": s.lineage,
        "finished_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": run.cfg,
    }


@contextmanager
def stop_on_signal(run: Run) -> Iterator[None]:
    """Within the block, the first SIGINT or SIGTERM asks the loop to stop after the current step (the
    run is checkpointed and can be resumed); a second one interrupts at once. Single-process runs in
    the main thread only (a DDP rank that stopped alone would hang the others)."""
    import signal
    import threading

    if run.world > 1 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        if run.stop_signal is not None:
            raise KeyboardInterrupt
        run.stop_signal = signum
        log.warning("%s: stopping after this step (checkpointed; continue with --resume)",
                    signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def train(
    cfg: dict,
    out_dir: str | Path,
    resume: bool = False,
    init_from: str | None = None,
    device: str | None = None,
    stop_at: int | None = None,
    progress: bool = True,
    session_minutes: float = 0.0,
    session: dict | None = None,
) -> dict:
    """Run (or resume) a training run in ``out_dir``; returns the run summary (also ``summary.json``).
    ``session_minutes``: checkpoint and stop after this long without changing the schedule (go on
    with ``resume``); SIGINT/SIGTERM do the same after the current step. ``session``: train settings
    (:data:`SESSION_KEYS`) a resumed run takes instead of its checkpoint's."""
    run = build_run(cfg, out_dir, resume=resume, init_from=init_from, device=device, session=session)
    if run.main:
        run.out.mkdir(parents=True, exist_ok=True)
        (run.out / "config.yaml").write_text(yaml.safe_dump(run.cfg, sort_keys=False))
    logs = _Logs(run.out, run.main)
    try:
        with stop_on_signal(run):
            stop_reason, finished = fit(run, logs, stop_at, progress, float(session_minutes) * 60.0)
    finally:
        if hasattr(run.sampler, "close"):  # the device sampler's prefetch thread
            run.sampler.close()
    if finished:
        run_validation(run, logs)
    save_run(run, final=finished)
    summary = _summary(run, stop_reason, finished)
    if run.main:
        write_json(run.out / "summary.json", summary, indent=1)
        if finished:
            torch.save({"model_state_dict": run.net.model.state_dict(), "variant": summary["variant"]},
                       run.out / "final.pt")
    logs.close()
    if run.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
    return summary
