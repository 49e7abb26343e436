"""``hirqa bag-quality``: summarize the node's recorded ``B_quality`` messages (parsed with
``hirqa_ros.quality_msg.parse``) per camera; optionally one CSV line per message."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "summarize recorded hirqa_node quality messages (B_quality topics) in a bag, per camera"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bag", help="rosbag2 directory or .mcap/.db3 file holding B_quality topics")
    p.add_argument("--topics", nargs="+", help="quality topics to read (default: every DiagnosticArray topic "
                                               "except /diagnostics)")
    p.add_argument("--csv", type=Path, metavar="FILE", help="also write one line per quality message")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    """Exit 0 when quality messages were read, 1 when none could be, 2 when the bag cannot be opened."""
    from hirqa_ros.bag.reader import BagOpenError
    from hirqa_ros.bag.recorded_quality import read_recorded_quality, write_csv

    try:
        rec = read_recorded_quality(args.bag, args.topics)
    except BagOpenError as exc:
        print(f"cannot read {args.bag}: {exc}")
        return 2
    for problem in rec.problems:
        print(f"problem: {problem}")
    for (topic, reason), n in sorted(rec.refused.items()):
        print(f"not a quality message: {topic}: {n} x {reason}")
    summary = rec.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{'topic':40s} {'msgs':>6s} {'mean':>6s} {'kept':>6s}  levels")
        for topic, s in summary.items():
            levels = ", ".join(f"{k} {v}" for k, v in sorted(s["levels"].items()))
            print(f"{topic:40s} {s['messages']:6d} {s['mean_score']:6.3f} {s['kept_fraction']:6.1%}  "
                  f"{levels}")
    if args.csv:
        write_csv(rec.rows, args.csv)
        print(f"wrote {args.csv} ({len(rec.rows)} lines)")
    if not rec.rows:
        print("no quality message found (B_quality topics of hirqa_node, schema hirqa_quality/1 or /2)")
        return 1
    return 0
