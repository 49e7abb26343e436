"""``hirqa gpu-run``: the prepared GPU training run in steps (``training/gpu_run.sh`` runs them):
a carryable init, training with the device sampler, weights packed in parts and unpacked, a sampler
profile."""

from __future__ import annotations

import argparse
import logging

HELP = "the prepared GPU run: init | train | pack | unpack | profile (training/gpu_run.sh runs them)"

log = logging.getLogger("hirqa.gpu_run")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from hirqa_ros.training.fit.gpu import DEFAULT_CONFIG, DEFAULT_INIT

    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    pi = sub.add_parser("init", help="slim fp16 init file from a training checkpoint")
    pi.add_argument("--checkpoint", required=True, help="RUN/checkpoints/last.pt")
    pi.add_argument("--out", default=DEFAULT_INIT)
    pi.add_argument("--hardware", default=None, help="hardware the checkpoint's run used (for the lineage)")
    pt = sub.add_parser("train", help="train with the device sampler under a wall-time budget")
    pt.add_argument("--config", default=DEFAULT_CONFIG)
    pt.add_argument("--work", required=True, help="run folder (checkpoints, final.pt, metrics)")
    pt.add_argument("--minutes", type=float, default=7.0, help="wall-time budget of the training loop")
    pt.add_argument("--max-steps", type=int, default=None)
    pt.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    pt.add_argument("--init-from", default=DEFAULT_INIT, help="init file / checkpoint / model dir, or 'none'")
    pt.add_argument("--prefetch", type=int, default=2, help="batches drawn ahead by a thread (0: none)")
    pt.add_argument("--smoke", action="store_true", help="tiny batches (CPU rehearsal of the same code path)")
    pt.add_argument("--no-progress", action="store_true")
    pk = sub.add_parser("pack", help="fp16 weights in parts + metrics into an output folder")
    pk.add_argument("--work", required=True)
    pk.add_argument("--out", required=True)
    pk.add_argument("--part-mib", type=float, default=15.0)
    pu = sub.add_parser("unpack", help="reassemble packed parts into a run folder")
    pu.add_argument("--parts", required=True)
    pu.add_argument("--run", required=True)
    pp = sub.add_parser("profile",
        help="aten calls, host syncs and time of the device sampler (torch.profiler)")
    pp.add_argument("--device", default="cpu")
    pp.add_argument("--size", type=int, default=96, help="crop side for the per-type profile")
    pp.add_argument("--batch", type=int, default=8, help="crops per ladder in the per-type profile")
    pp.add_argument("--types", nargs="*", default=None)
    pp.add_argument("--ladders", type=int, default=16, help="ladders per sampler batch")
    pp.add_argument("--per-type", type=int, default=2)
    pp.add_argument("--no-draw", action="store_true", help="only the per-type profile")


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hirqa_ros.training.fit.gpu import train_on_gpu

    work = Path(args.work)
    try:
        s = train_on_gpu(args.config, work, args.minutes, args.device, args.init_from, args.max_steps,
                         args.prefetch, args.smoke, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    last = s["val_history"][-1] if s["val_history"] else {}
    print(f"{work}: step {s['step']} ({s['stop_reason']}), {s['elapsed_s']:.0f} s, {s['images_per_s']} "
          f"images/s on {s['hardware']}"
          + (f", val pooled AUROC {last.get('pooled_auroc')}, ladder SROCC {last.get('pooled_ladder_srocc')}"
             if last else ""), flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hirqa_ros.training.fit import gpu

    if args.action == "train":
        return _train(args)
    if args.action == "profile":
        from hirqa_ros.training.data.profile import print_profile

        print_profile(args.device, args.size, args.batch, args.types, args.ladders, args.per_type,
                      not args.no_draw)
        return 0
    try:
        if args.action == "init":
            gpu.make_init(Path(args.checkpoint), Path(args.out), args.hardware)
        elif args.action == "pack":
            gpu.pack(Path(args.work), Path(args.out), args.part_mib)
        else:
            gpu.unpack(Path(args.parts), Path(args.run))
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    return 0
