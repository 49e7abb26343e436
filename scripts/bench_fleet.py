#!/usr/bin/env python3
"""Throughput of ``hirqa bag-eval`` on a fleet of bags, same bags and same run for each engine:
local with 1 and 2 workers, Ray on a local cluster with 2 workers (and checks the engines agree
frame for frame). A benchmark, not a test; prints a markdown table with the machine's load.

    PYTHONPATH=. .venv/bin/python scripts/bench_fleet.py --bags 4 --seconds 2 --size 640x480
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [("local", 1), ("local", 2), ("ray", 2)]


def make_bags(folder: Path, n: int, seconds: float, size: tuple[int, int], rate: float) -> None:
    from hirqa_ros.bag.make_bag import make_bag

    for i in range(n):
        make_bag(folder / f"drive{i}", images=ROOT / "hirqa_ros" / "data" / "samples", size=size,
                 rate_hz=rate, duration_s=seconds, storage="mcap",
                 labels_out=folder / f"drive{i}.labels.yaml", seed=i)


def run(bags: Path, out: Path, engine: str, workers: int, model: str | None) -> dict:
    cmd = [sys.executable, "-m", "hirqa_ros.cli.main", "bag-eval", str(bags), "--out", str(out),
           "--engine", engine, "--workers", str(workers), "--no-progress", "--no-plots", "--force"]
    if model:
        cmd += ["--model", model]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{engine} x{workers} failed ({res.returncode}): {res.stderr[-2000:]}")
    return json.loads((out / "fleet.json").read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bags", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--model")
    args = ap.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="hirqa-bench-fleet-") as tmp:
        bags = Path(tmp) / "bags"
        make_bags(bags, args.bags, args.seconds, size, args.rate)
        load0 = os.getloadavg()
        results = {}
        for engine, workers in CONFIGS:
            out = Path(tmp) / f"{engine}{workers}"
            results[(engine, workers)] = run(bags, out, engine, workers, args.model)
        load1 = os.getloadavg()
        ref = Path(tmp) / "local1" / "bags"
        outs = [Path(tmp) / f"{engine}{workers}" / "bags" for engine, workers in CONFIGS[1:]]
        same = all((ref / d.name / "frames.csv").read_bytes() == (d / "frames.csv").read_bytes()
                   for o in outs for d in o.iterdir())
    frames = sum(b.get("scored") or 0 for b in results[CONFIGS[0]]["bags"])
    print(f"{args.bags} bags x {args.seconds:g} s at {args.rate:g} Hz, {args.size} rgb8 MCAP, "
          f"{frames} frames; "
          f"{os.cpu_count()} CPUs; load average before {load0[0]:.1f}, after {load1[0]:.1f}; "
          f"per-frame results identical across engines: {same}")
    print("| engine | workers | frames/s | real-time factor | evaluation s | worker start s |")
    print("|---|---|---|---|---|---|")
    for (engine, workers), s in results.items():
        r = s["run"]
        print(f"| {engine} | {workers} | {r['frames_per_s']:.2f} | {r['real_time_factor']:.3f} | "
              f"{r['evaluation_s']:.1f} | {r['engine_start_s']:.1f} |")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
