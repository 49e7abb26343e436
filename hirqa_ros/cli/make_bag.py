"""``hirqa make-bag``: a labelled test rosbag2 from a video or an image folder, with degraded segments."""

from __future__ import annotations

import argparse
import logging

from hirqa_ros.cli.ranges import frame_size, ranged

HELP = "build a labelled test rosbag2 (sqlite3/MCAP, raw or compressed) with degradation segments"

log = logging.getLogger("hirqa.make-bag")


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--images", metavar="DIR", help="folder of photos (cycled, each panned for --hold frames)"
    )
    src.add_argument("--video", metavar="FILE", help="video file (any format OpenCV reads)")
    p.add_argument("--out", required=True,
                   help="bag directory to create (an existing one is replaced only with --force)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out bag and labels file, once the new ones are complete")
    p.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="default sqlite3")
    p.add_argument(
        "--compressed",
        action="store_true",
        help="sensor_msgs/CompressedImage (JPEG) on <topic>/compressed instead of raw Image",
    )
    p.add_argument(
        "--encoding", default="rgb8", help="raw image encoding (rgb8, bgr8, mono8, ...; default rgb8)"
    )
    p.add_argument("--jpeg-quality", type=ranged(int, 1, 100), default=90,
                   help="JPEG quality for --compressed, 1..100 (default 90)")
    p.add_argument("--rate", type=ranged(float, 0.0, 1000.0, lo_open=True), default=10.0,
                   help="frames per second per topic, in (0, 1000] (default 10)")
    p.add_argument("--size", type=frame_size("WxH", 1, 16384), default=(640, 480),
                   help="frame size WxH, sides 1..16384 (default 640x480)")
    p.add_argument("--duration", type=ranged(float, 0.0, 86400.0, lo_open=True), default=10.0,
                   help="bag length in seconds, in (0, 86400] (default 10)")
    p.add_argument(
        "--topics",
        nargs="+",
        default=["/camera/image_raw"],
        help="image topics, one camera each (default /camera/image_raw)",
    )
    p.add_argument(
        "--segments",
        nargs="+",
        metavar="START:END:DEG[:LEVEL[:LABEL]]",
        help="degraded stretches in seconds from the start, e.g. 2:4:haze:4 6:7:defocus:3:blur "
        "(default: haze, defocus, low_light and glare stretches at level 4); "
        "'none' for a clean bag",
    )
    p.add_argument("--labels-out", help="write the matching labels YAML here (default: <out>.labels.yaml)")
    p.add_argument(
        "--qos",
        choices=("sensor", "reliable"),
        default="sensor",
        help="QoS recorded for the image topics (replayed by bag-play; default sensor = best effort)",
    )
    p.add_argument("--hold", type=ranged(int, 1, 1_000_000), default=20,
                   help="frames per photo for --images, >= 1 (default 20)")
    p.add_argument("--seed", type=ranged(int, 0, 2**32 - 1), default=0,
                   help="seed of the random degradations (default 0)")
    p.add_argument("--scenario", choices=("drive", "moving"),
                   help="a long two-camera gate sequence from --images instead (docs/gate.md): drive = "
                   "640x480 raw, 6 faults in 4-s stretches; moving = 480x360 compressed, pans, cuts to "
                   "plainer "
                   "scenes, gradual, first-frame and long faults (--size/--duration/--segments/--topics are "
                   "ignored)")
    p.add_argument("--photos", default="0/1", metavar="K/N",
                   help="with --scenario: use every N-th photo from the K-th (e.g. 0/2 and 1/2 for disjoint "
                   "tuning and test sets; default 0/1 = all)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hirqa_ros.bag.make_bag import SegmentSpec
    from hirqa_ros.files import describe_existing
    from hirqa_ros.interrupts import interrupt_status, terminate_like_interrupt

    if args.scenario:
        return _scenario(args)
    try:
        if args.segments and [s.lower() for s in args.segments] == ["none"]:
            segments = []
        else:
            segments = [SegmentSpec.parse(s) for s in args.segments] if args.segments else None
        out = Path(args.out)
        labels_out = Path(args.labels_out or out.with_name(out.name + ".labels.yaml"))
        for what, p in (("--out", out), ("--labels-out", labels_out)):
            if p.exists() and not args.force:
                log.error("%s %s; pass --force to replace it once the new bag is complete, or choose "
                          "another %s", what, describe_existing(p), what)
                return 2
        with terminate_like_interrupt():
            made = _make_staged(
                out,
                images=args.images,
                video=args.video,
                topics=args.topics,
                storage=args.storage,
                compressed=args.compressed,
                encoding=args.encoding,
                jpeg_quality=args.jpeg_quality,
                rate_hz=args.rate,
                size=args.size,
                duration_s=args.duration,
                segments=segments,
                labels_out=labels_out,
                hold_frames=args.hold,
                qos=args.qos,
                seed=args.seed,
                progress=True,
            )
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    except OSError as exc:
        log.error("cannot write %s: %s", exc.filename or args.out, exc.strerror or exc)
        return 2
    except KeyboardInterrupt as exc:
        log.error("interrupted: no bag written; %s left as it was", args.out)
        return interrupt_status(exc)
    print(f"wrote {made.path} ({made.frames} frames x {len(made.topics)} topic(s): {', '.join(made.topics)})")
    print(f"labels: {made.labels_path}")
    for s in made.labels.segments:
        print(
            f"  {s.topic}: {(s.start_ns - made.labels.origin_ns) / 1e9:.2f}-"
            f"{(s.end_ns - made.labels.origin_ns) / 1e9:.2f} s {s.label}"
        )
    return 0


def _make_staged(out, labels_out, **options):
    """``bag.make_bag.make_bag`` into a hidden sibling; the bag, then its labels, are moved to ``out``
    and ``labels_out`` only once both are complete (an earlier bag stays whole until then)."""
    from hirqa_ros.bag.make_bag import make_bag
    from hirqa_ros.files import staged_outputs
    from hirqa_ros.interrupts import signals_held

    with signals_held():  # torch's native init: a Ctrl-C or SIGTERM inside it would abort the process;
        import hirqa_ros.degradations  # noqa: F401  held, it arrives just after, as a clean interrupt
    with staged_outputs([out, labels_out]) as (bag_work, labels_work):
        made = make_bag(bag_work, labels_out=labels_work, **options)
    made.path, made.labels_path = out, labels_out
    return made


def _scenario(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hirqa_ros.bag import sequences

    if not args.images:
        log.error("--scenario needs --images DIR (photos to move over)")
        return 2
    try:
        k, n = (int(x) for x in args.photos.split("/"))
        if not 0 <= k < n:
            raise ValueError
    except ValueError:
        log.error("--photos must be K/N with 0 <= K < N, got %r", args.photos)
        return 2
    if Path(args.out).exists():
        log.error("%s exists already; rosbag2 writers never overwrite, choose another --out", args.out)
        return 2
    try:
        photos = sequences.load_photos(args.images)[k::n]
        detailed, plain = sequences.split_by_detail(photos)
        if len(detailed) < 2 or len(plain) < 1:
            raise ValueError(f"{args.images} ({k}/{n}): need at least 3 photos with texture, "
                             f"got {len(photos)}")
        sc = sequences.drive(detailed) if args.scenario == "drive" else sequences.moving(detailed, plain)
        bag = sequences.write_scenario(sc, photos, args.out, seed=args.seed, progress=True)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    print(f"wrote {bag} ({args.scenario}: {sc.duration_s:g} s x {len(sc.cameras)} cameras at {sc.size[0]}x"
          f"{sc.size[1]}), labels {bag}.labels.yaml, cuts {bag}.scenario.json")
    return 0
