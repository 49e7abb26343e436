"""``hirqa train``: train HiRQA / HiRQA-S on synthetic distortion ladders (CPU, CUDA, torchrun DDP)."""

from __future__ import annotations

import argparse
import logging

from hirqa_ros.cli.ranges import ranged

HELP = "train HiRQA-S / HiRQA from pristine photos and synthetic distortions (resumable, CPU/GPU/DDP)"

log = logging.getLogger("hirqa.train")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None,
                   help="training config YAML (default config/train_hirqa_s.yaml; --resume: the run's own)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument(
        "--init-from",
        metavar="MODEL_DIR",
        default=None,
        help="start from a model directory's weights (e.g. models/hirqa-s) or a training checkpoint "
        "(RUN/checkpoints/last.pt); its lineage is kept",
    )
    p.add_argument(
        "--teacher",
        metavar="MODEL_DIR",
        default=None,
        help="distil from this model directory (e.g. a model on an ImageNet-initialised trunk): sets "
        "distill_from; losses.distill weighs its score and embedding (1 when the config leaves it at 0)",
    )
    p.add_argument(
        "--max-steps", type=ranged(int, 1, 10**9), default=None,
        help="schedule length in steps (overrides the config)"
    )
    p.add_argument(
        "--stop-at",
        type=ranged(int, 1, 10**9),
        default=None,
        help="checkpoint and stop at this step without changing the schedule (continue with --resume)",
    )
    p.add_argument(
        "--session-minutes",
        type=ranged(float, 0.0, 1e6, lo_open=True),
        default=None,
        metavar="MIN",
        help="checkpoint and stop after MIN minutes of this session, schedule unchanged (continue with "
        "--resume); Ctrl-C / SIGTERM also checkpoint after the current step",
    )
    p.add_argument(
        "--wall-time",
        type=ranged(float, 0.0, 1e6, lo_open=True),
        default=None,
        metavar="MIN",
        help="wall-time budget in minutes; the cosine schedule is re-planned to end with it",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--threads", type=ranged(int, 1, 1024), default=None,
                   help="CPU threads for torch (default: config/torch)")
    p.add_argument("--sampler", choices=("host", "device"), default=None,
                   help="where ladders are drawn: host, or device (photos on the GPU; default: the config)")
    p.add_argument("--train-dir", default=None, help="pristine training photos (overrides data.train)")
    p.add_argument("--val-dir", default=None, help="held-out pristine photos (overrides data.val)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hirqa_ros.training.fit.trainer import load_config, train

    if args.teacher and args.resume:
        log.error("--teacher starts a run; a resumed run keeps the teacher it started with")
        return 2
    over: dict = {"train": {}, "data": {}}
    if args.teacher:
        over["distill_from"] = args.teacher
    if args.max_steps is not None:
        over["train"]["max_steps"] = args.max_steps
    if args.wall_time is not None:
        over["train"]["wall_time_minutes"] = args.wall_time
    if args.threads is not None:
        over["train"]["threads"] = args.threads
    if args.sampler:
        over["train"]["sampler"] = args.sampler
    if args.train_dir:
        over["data"]["train"] = args.train_dir
    if args.val_dir:
        over["data"]["val"] = args.val_dir
    try:
        cfg = load_config(args.config or (None if args.resume else "config/train_hirqa_s.yaml"), over)
    except (OSError, ValueError) as exc:
        log.error("cannot read config %s: %s", args.config, exc)
        return 2
    if args.teacher and not float(cfg["losses"].get("distill") or 0):
        cfg["losses"]["distill"] = 1.0
    out = Path(args.out or f"runs/{cfg['name']}")
    if not args.resume and (out / "checkpoints" / "last.pt").exists():
        log.error("%s already holds a run; pass --resume to continue it or choose another --out", out)
        return 2
    try:
        s = train(
            cfg,
            out,
            resume=args.resume,
            init_from=args.init_from,
            device=args.device,
            stop_at=args.stop_at,
            progress=not args.no_progress,
            session_minutes=args.session_minutes or 0.0,
            session=over["train"],  # --threads on a resumed run
        )
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    import os

    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        return 0
    last = s["val_history"][-1] if s["val_history"] else {}
    if not s["finished"]:
        print(f"{out}: checkpointed at step {s['step']} of {s['planned_steps']} ({s['stop_reason']}); "
              f"continue with: hirqa train --out {out} --resume")
        if s.get("stop_signal"):  # Ctrl-C / SIGTERM: 130 / 143, as a shell reports an interrupted command
            return 128 + int(s["stop_signal"])
    print(
        f"{out}: step {s['step']} ({s['stop_reason']}), {s['elapsed_s']:.0f} s, {s['images_per_s']} images/s"
        + (
            f", val pooled AUROC {last.get('pooled_auroc')}, ladder SROCC {last.get('pooled_ladder_srocc')}"
            if last
            else ""
        )
    )
    return 0
