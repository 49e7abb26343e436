"""``hirqa bag-play``: publish a bag through rclpy with its recorded stamps and QoS (no rosbag2 needed)."""

from __future__ import annotations

import argparse
import logging

from hirqa_ros.cli.ranges import ranged

HELP = "publish a rosbag2/ROS 1 bag to a live ROS 2 graph through rclpy (stand-in for `ros2 bag play`)"

log = logging.getLogger("hirqa.bag-play")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bag", help="rosbag2 directory, .mcap or .db3 file, or ROS 1 .bag")
    p.add_argument("--rate", type=ranged(float, 0.0, 1000.0, lo_open=True), default=1.0,
                   help="playback speed factor, in (0, 1000] (default 1.0)")
    p.add_argument("--loop", action="store_true", help="play again and again until Ctrl-C")
    p.add_argument(
        "--clock",
        nargs="?",
        type=ranged(float, 0.0, 1000.0, lo_open=True),
        const=40.0,
        default=None,
        metavar="HZ",
        help="publish /clock from bag time at HZ in (0, 1000] (default 40 Hz) for nodes with "
        "use_sim_time:=true",
    )
    p.add_argument(
        "--topics", nargs="+", help="topics to publish (default: every topic rclpy has the type of)"
    )
    qos = p.add_mutually_exclusive_group()
    qos.add_argument(
        "--reliable",
        dest="reliable",
        action="store_const",
        const=True,
        default=None,
        help="publish reliable whatever was recorded",
    )
    qos.add_argument(
        "--best-effort",
        dest="reliable",
        action="store_const",
        const=False,
        help="publish best effort whatever was recorded",
    )
    p.add_argument("--depth", type=ranged(int, 1, 10000),
                   help="publisher history depth, 1..10000 (default: as recorded)")
    p.add_argument(
        "--wait-for-subscribers",
        type=ranged(int, 0, 1000),
        default=0,
        metavar="N",
        help="before playing, wait until every topic has N matched subscriptions (else exit 3)",
    )
    p.add_argument(
        "--wait-timeout", type=ranged(float, 0.0, 86400.0), default=10.0,
        help="seconds to wait for subscribers (default 10)"
    )
    p.add_argument("--delay", type=ranged(float, 0.0, 86400.0), default=0.0,
                   help="seconds to sleep before playing (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from hirqa_ros.bag.reader import BagOpenError

    try:
        from hirqa_ros.node import bag_play
    except ImportError as exc:
        log.error("rclpy is not importable (%s): source a ROS 2 install or pip install the 'ros' extra", exc)
        return 2
    try:
        stats = bag_play.play(
            args.bag,
            topics=args.topics,
            rate=args.rate,
            loop=args.loop,
            clock=args.clock is not None,
            clock_hz=args.clock or 40.0,
            reliable=args.reliable,
            depth=args.depth,
            wait_subscribers=args.wait_for_subscribers,
            wait_timeout_s=args.wait_timeout,
            delay_s=args.delay,
            progress=not args.no_progress,
            teardown=False,
        )
    except (BagOpenError, ValueError) as exc:
        log.error("%s", exc)
        return _exit(2, bag_play)
    except bag_play.NoSubscribers as exc:
        log.error("%s", exc)
        return _exit(3, bag_play)
    total = sum(stats.published.values())
    print(
        f"published {total} messages in {stats.wall_s:.1f} s ({stats.loops} pass(es)): "
        + ", ".join(f"{t} {n}" for t, n in stats.published.items())
    )
    if stats.errors:
        print(f"  {stats.errors} messages could not be converted and were skipped")
    return _exit(0 if total else 1, bag_play)


def _exit(code: int, bag_play) -> int:
    """The exit code. When play() left a DDS participant alive (it skips Fast DDS teardown, which
    can block for many seconds), end the process right here: exiting closes everything anyway."""
    if bag_play._LEFT_FOR_EXIT:
        import os
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
