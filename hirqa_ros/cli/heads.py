"""``hirqa heads``: heads on the frozen embedding: cache a protocol run's embeddings (``embed``), then
choose and fit the score head and the fault head on them (``fit``); ``hirqa release heads`` ships them."""

from __future__ import annotations

import argparse
import logging

from hirqa_ros.cli.ranges import ranged

HELP = "heads on the frozen embedding: embed (cache protocol embeddings) | fit (score + fault heads)"

log = logging.getLogger("hirqa.heads")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    pe = sub.add_parser("embed", help="run the network over protocol views of photos; cache as .npz")
    pe.add_argument("--images", required=True, help="folder of pristine photos")
    pe.add_argument("--out", required=True, help="output .npz")
    pe.add_argument("--model", default=None, help="model directory (default: the installed default model)")
    pe.add_argument("--types", nargs="+", default=None, help="types/groups (default: the full-frame types)")
    pe.add_argument("--all-types", action="store_true", help="every default type of the library")
    pe.add_argument("--windows", type=int, default=0,
        help="cut N x N windows of the frames (0 = whole frames)")
    pe.add_argument("--views-per-image", type=int, default=1)
    pe.add_argument("--max-images", type=int, default=None)
    pe.add_argument("--seed", type=int, default=0)
    pe.add_argument("--threads", type=int, default=2)
    pe.add_argument("--cache-dir", default="runs/cache")
    pe.add_argument("--pristine-only", type=int, default=0, metavar="N",
                    help="only N clean views per photo (windows, or whole frames without --windows): "
                         "embeddings + cues, no ladders")
    pe.add_argument("--physical-order", nargs="?", const="0.5:3", default=None, metavar="SIGMA|LO:HI",
                    help="render in a camera's physical order: fault, then a sensor noise floor of SIGMA "
                         "grey levels, or per view a sigma drawn from U(LO, HI) (default 0.5:3), on every "
                         "frame (clean ones included), then noise faults, JPEG")
    pe.add_argument("--frame-sizes", nargs="+", default=None, metavar="WxH",
                    help="camera frame sizes, used in turn per view (default 640x480 1280x720 1920x1080)")
    pe.add_argument("--transport-jpeg", type=ranged(int, 1, 100), default=0, metavar="Q",
                    help="every frame, clean ones included, leaves as a JPEG of quality Q, last, like a "
                         "compressed image topic (default: raw)")
    pe.add_argument("--no-cues", action="store_true", help="skip the classical cues (faster)")
    pf = sub.add_parser("fit", help="fit the score head and the fault head on cached embeddings")
    pf.add_argument("--train", required=True, nargs="+",
                    help=".npz of the training photos (hirqa heads embed; shards are joined)")
    pf.add_argument("--val", required=True, nargs="+",
                    help=".npz of the held-out full-frame protocol (report only; shards are joined)")
    pf.add_argument("--val-plain", default=None, nargs="+",
                    help=".npz of the same held-out photos noise-free, when --val is in physical order "
                         "(the release gate compares both)")
    pf.add_argument("--val-topic", default=None, nargs="+",
                    help=".npz of the same held-out photos as a compressed image topic delivers them "
                         "(embed --transport-jpeg, the topic's size): the release gate wants none lower")
    pf.add_argument("--model", default=None, help="model directory whose fc.0 is the starting point")
    pf.add_argument("--out", required=True, help="output folder: score_head.npz, fault_head.npz, report.json")
    pf.add_argument("--fault-head", default=None,
        help="reuse this fitted fault head (its report.json beside it)")
    pf.add_argument("--fused", action="store_true",
        help="also try a fused head on [embedding, classical cues]")
    pf.add_argument("--extra-fault-train", nargs="+", default=None,
                    help=".npz runs of the same training photos (e.g. 256 px windows) that only add training "
                         "rows to the fault head (the --train types are used)")
    pf.add_argument("--scale-from", default=None, nargs="+", metavar="NPZ",
                    help="another model's embed runs of --train frames (same photos, protocol, seed): its "
                         "scores set the refit score's unit instead of --model's head, e.g. today's "
                         "default when --model is a new trunk, so the gate's settings in score units keep "
                         "their meaning")
    pf.add_argument("--folds", type=int, default=5, help="photo folds of the training photos for choosing")
    pf.add_argument("--clean", default=None,
                    help=".npz of extra clean views of the training photos "
                         "(hirqa heads embed --pristine-only)")


def floor_range(spec: str) -> tuple[float, float]:
    """``SIGMA`` or ``LO:HI`` (grey levels, 0 < LO <= HI <= 64) as (lo, hi)."""
    try:
        lo, hi = (float(v) for v in spec.split(":")) if ":" in spec else (float(spec),) * 2
    except ValueError:
        raise ValueError(f"bad --physical-order {spec!r}: expected SIGMA or LO:HI, e.g. 0.5:3") from None
    if not 0.0 < lo <= hi <= 64.0:
        raise ValueError(f"bad --physical-order {spec!r}: need 0 < LO <= HI <= 64 grey levels")
    return lo, hi


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.action == "embed":
        from hirqa_ros.cli.eval import frame_sizes
        from hirqa_ros.evaluation.synthetic import FULL_FRAME_TYPES
        from hirqa_ros.training.heads.embeddings import embed

        types = None if args.all_types else (args.types or list(FULL_FRAME_TYPES))
        try:
            floor = floor_range(args.physical_order) if args.physical_order else None
            sizes = frame_sizes(args.frame_sizes) if args.frame_sizes else None
            embed(args.images, args.out, args.model, types, args.windows, args.views_per_image,
                  args.max_images, args.seed, args.threads, args.cache_dir, args.pristine_only, floor, sizes,
                  not args.no_cues, args.transport_jpeg)
        except ValueError as exc:
            log.error("%s", exc)
            return 2
        return 0
    from hirqa_ros.training.heads.select import fit_heads

    try:
        fit_heads(args.train, args.val, Path(args.out), args.model, args.fault_head, args.fused,
                  args.extra_fault_train, args.folds, args.clean, args.val_plain, args.val_topic,
                  args.scale_from)
    except (FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    return 0
