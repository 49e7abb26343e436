"""Node benchmark: publish->quality latency (p50/p95), highest sustained frame rate, node overhead.

``python -m hirqa_ros.node.bench [--cameras 1,2,4] [--size 640x480] [--backend auto] [--model DIR]``
Starts hirqa_node as a subprocess per camera count, publishes from this process over real DDS.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hirqa_ros.node.harness import RosHarness, image_msg, set_stamp, start_node, stop_node
from hirqa_ros.quality_msg import QualityReport, parse
from hirqa_ros.topics import CameraTopics


def _frame(w: int, h: int, seed: int) -> np.ndarray:
    """A photo if the package ships samples, else a textured synthetic frame."""
    import cv2

    samples = sorted((Path(__file__).resolve().parents[1] / "data" / "samples").glob("*.jpg"))
    if samples:
        from hirqa_ros.files import read_image

        return cv2.resize(read_image(samples[seed % len(samples)]), (w, h), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (5, 5), 0)


def pure_inference_ms(model: str | None, backend: str, frames: list[np.ndarray],
                      runs: int) -> tuple[float, str]:
    """Median time of one ``Scorer.score`` call on ``frames`` (one batch), in this process."""
    from hirqa_ros import load_scorer

    scorer = load_scorer(model or None, backend=backend)
    scorer.score(frames)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        scorer.score(frames)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times)), scorer.backend


class _Client(RosHarness):
    """Publishes every camera's frames (best effort) and records their quality messages."""

    def __init__(self, topics: list[str]) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image

        super().__init__(f"hirqa_bench_{os.getpid()}")
        self.received: list[tuple[str, int, int, QualityReport]] = []  # (topic, stamp ns, receive ns, report)
        self.pubs = {t: self.node.create_publisher(Image, t, qos_profile_sensor_data) for t in topics}
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.subs = [self.node.create_subscription(DiagnosticArray, CameraTopics(t).quality,
                                                   lambda m, t=t: self._on(t, m), qos) for t in topics]

    def _on(self, topic: str, msg) -> None:
        now = time.time_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        report = parse(msg)
        if report.inherited:  # gate_mode state: a forwarded frame's copy of an earlier verdict, not a score
            return
        with self.lock:
            self.received.append((topic, stamp, now, report))

    def publish(self, topic: str, msg) -> int:
        ns = time.time_ns()
        set_stamp(msg, ns)
        self.pubs[topic].publish(msg)
        return ns


def bench_cameras(n: int, args, frames: list[np.ndarray]) -> dict:
    topics = [f"/bench/cam{i}/image_raw" for i in range(n)]
    logf = Path(tempfile.mkdtemp(prefix="hirqa_bench_")) / f"node_{n}.log"
    cmd = [sys.executable, "-m", "hirqa_ros.node.main", "--ros-args", "-r", "__node:=hirqa_bench_node",
           "-p", "image_topics:=[" + ", ".join(f"'{t}'" for t in topics) + "]",
           "-p", f"backend:={args.backend}"]
    if args.model:
        cmd += ["-p", f"model_path:={args.model}"]
    node = start_node(cmd, logf)
    client = None
    try:
        client = _Client(topics)
        if not client.wait_matched(list(client.pubs.values()), client.subs, 60.0):
            raise RuntimeError("DDS discovery did not match the node within 60 s")
        msgs = [image_msg(frames[i % len(frames)], "bench") for i in range(n)]
        # 1) latency: one frame per camera at a time (a batch of n), next round after all scores are in
        lat, node_lat, infer, lost = [], [], [], 0
        for r in range(args.rounds + 1):
            with client.lock:
                client.received.clear()
            sent = {t: client.publish(t, m) for t, m in zip(topics, msgs)}
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with client.lock:
                    got = {t: (s, rcv, v) for t, s, rcv, v in client.received if s == sent[t]}
                if len(got) == n:
                    break
                time.sleep(0.005)
            lost += n - len(got)
            if r == 0:
                continue  # warm-up round
            for _t, (s, rcv, v) in got.items():
                lat.append((rcv - s) / 1e6)
                node_lat.append(v.latency_ms)
                infer.append(v.inference_ms)
            time.sleep(0.2)
        # 2) throughput: every camera at args.rate Hz for args.seconds; count quality messages
        with client.lock:
            client.received.clear()
        period = 1.0 / args.rate
        t0 = time.monotonic()
        k = 0
        while time.monotonic() - t0 < args.seconds:
            for t, m in zip(topics, msgs):
                client.publish(t, m)
            k += 1
            time.sleep(max(0.0, t0 + k * period - time.monotonic()))
        time.sleep(0.5)
        with client.lock:
            rec = list(client.received)
        t_end = time.time_ns()
        window = [x for x in rec if x[2] >= t_end - int((args.seconds - 1.0) * 1e9)]  # skip the first second
        rate = len(window) / max(args.seconds - 1.0, 1e-6)
        batches = [int(v.batch_size) for *_, v in rec]
        return {
            "cameras": n, "latency_p50_ms": float(np.percentile(lat, 50)) if lat else None,
            "latency_p95_ms": float(np.percentile(lat, 95)) if lat else None,
            "node_latency_p50_ms": float(np.percentile(node_lat, 50)) if node_lat else None,
            "inference_in_node_p50_ms": float(np.percentile(infer, 50)) if infer else None,
            "lost_in_latency_rounds": lost, "sent_rate_hz_per_camera": args.rate,
            "published_frames_per_s_total": n * args.rate,
            "scored_frames_per_s_total": rate, "scored_frames_per_s_per_camera": rate / n,
            "mean_batch_size_saturated": float(np.mean(batches)) if batches else None,
        }
    finally:
        if client is not None:
            client.close()
        stop_node(node, 10)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--gate"]:  # the gate-mode benchmark, with its own options
        from hirqa_ros.node.gate_bench import main as gate_main

        return gate_main(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m hirqa_ros.node.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="--gate [OPTIONS] (first): the gate_mode benchmark instead "
                                        "(hirqa_ros.node.gate_bench --help)")
    ap.add_argument("--cameras", default="1,2,4", help="camera counts to run (default 1,2,4)")
    ap.add_argument("--size", default="640x480", help="frame size WxH (default 640x480)")
    ap.add_argument("--backend", default="auto", help="node backend (default auto)")
    ap.add_argument("--model", default="", help="model directory (default: the installed default)")
    ap.add_argument("--rounds", type=int, default=10, help="latency rounds per camera count (default 10)")
    ap.add_argument("--seconds", type=float, default=10.0, help="saturation run length (default 10 s)")
    ap.add_argument("--rate", type=float, default=30.0,
                    help="publish rate per camera when saturating (default 30 Hz)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    w, h = (int(v) for v in args.size.lower().split("x"))
    counts = [int(c) for c in args.cameras.split(",")]
    frames = [_frame(w, h, i) for i in range(max(counts))]
    results = []
    print(f"frames {w}x{h}, backend {args.backend}, model {args.model or '(default)'}; "
          f"{os.cpu_count()} CPUs visible", flush=True)
    for n in counts:
        pure, used = pure_inference_ms(args.model, args.backend, frames[:n], runs=5)
        print(f"[{n} camera(s)] pure Scorer.score of a batch of {n} in-process: {pure:.1f} ms ({used})",
              flush=True)
        r = bench_cameras(n, args, frames)
        r.update(pure_inference_batch_ms=pure, backend=used)
        results.append(r)
        print(json.dumps(r), flush=True)
    print("\ncams | e2e p50 / p95 ms | node recv->pub p50 | inference in node | pure batch | "
          "sustained scored fps (total / per cam) | mean batch")
    for r in results:
        def f(x):
            return "n/a" if x is None else f"{x:.0f}"
        print(f"{r['cameras']:4d} | {f(r['latency_p50_ms']):>7s} / {f(r['latency_p95_ms']):<6s} | "
              f"{f(r['node_latency_p50_ms']):>18s} | {f(r['inference_in_node_p50_ms']):>17s} | "
              f"{r['pure_inference_batch_ms']:10.0f} | {r['scored_frames_per_s_total']:8.2f} / "
              f"{r['scored_frames_per_s_per_camera']:.2f} | {r['mean_batch_size_saturated'] or 0:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
