"""``hirqa demo``: start hirqa_node and a sample camera streaming photos with hazy, blurred, dark and
glared stretches; print every frame's verdict live and a per-condition summary at the end."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from hirqa_ros.cli.ranges import ranged
from hirqa_ros.constants import BACKEND_CHOICES

HELP = "run hirqa_node on a sample camera stream with hazy/blurred/dark/glared stretches, print verdicts"

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
#: (condition shown, degradation name or None, severity offset from --severity)
SCHEDULE = (("clear", None), ("haze", "haze"), ("clear", None), ("blurred", "defocus"),
            ("dark", "low_light"), ("glare", "glare"), ("clear", None))
TOPIC = "/hirqa_demo/camera/image_raw"
NODE = "hirqa_demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="DIR", default="",
                        help="model directory (default: $HIRQA_MODEL, else the installed models/hirqa-s)")
    parser.add_argument("--backend", default="auto",
                        choices=BACKEND_CHOICES,
                        help="inference backend of the node (default auto)")
    parser.add_argument("--duration", type=ranged(float, 0.0, 86400.0, lo_open=True), default=35.0,
                        help="seconds of streaming (default 35)")
    parser.add_argument("--rate", type=ranged(float, 0.0, 1000.0, lo_open=True), default=4.0,
                        help="camera frames per second (default 4)")
    parser.add_argument("--size", default="320x240",
                        help="frame size WxH (default 320x240; 640x480 needs a fast CPU or a GPU for 4 Hz)")
    parser.add_argument("--severity", type=int, default=4, choices=range(1, 6),
                        help="severity level 1..5 of the degraded stretches (default 4)")
    parser.add_argument("--samples", metavar="DIR", default=str(SAMPLES),
                        help="folder of photos to stream (default: the package's sample photos)")
    parser.add_argument("--domain-id", type=ranged(int, 0, 232), default=None,
                        help="ROS_DOMAIN_ID for the node and the camera (default: the environment's)")
    parser.add_argument("--show-node-log", action="store_true", help="print the node's log at the end")


def _photos(folder: str, size: tuple[int, int]) -> list:
    import cv2
    import numpy as np

    from hirqa_ros.files import is_image_file, read_image

    w, h = size
    out = []
    for f in sorted(Path(folder).glob("*")):
        if not f.is_file() or not is_image_file(f):
            continue
        try:
            rgb = read_image(f)
        except ValueError as exc:
            print(f"skipping unreadable {f}: {exc}", file=sys.stderr)
            continue
        # cover-crop to the frame's aspect, then resize: a camera-like frame
        ih, iw = rgb.shape[:2]
        s = max(w / iw, h / ih)
        rgb = cv2.resize(rgb, (max(w, round(iw * s)), max(h, round(ih * s))), interpolation=cv2.INTER_AREA)
        y0, x0 = (rgb.shape[0] - h) // 2, (rgb.shape[1] - w) // 2
        out.append(np.ascontiguousarray(rgb[y0:y0 + h, x0:x0 + w]))
    return out


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run(args: argparse.Namespace) -> int:
    from hirqa_ros.degradations import degrade

    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        assert w >= 32 and h >= 32
    except (ValueError, AssertionError):
        print(f"--size {args.size!r}: expected WxH, both >= 32", file=sys.stderr)
        return 2
    if args.rate <= 0 or args.duration <= 0:
        print("--rate and --duration must be positive", file=sys.stderr)
        return 2
    photos = _photos(args.samples, (w, h))
    if not photos:
        print(f"no photos in {args.samples}", file=sys.stderr)
        return 2
    print(f"preparing {len(photos)} photos x {len(SCHEDULE)} stretches at {w}x{h}, "
          f"severity {args.severity} ...")
    frames = {}
    for cond, name in SCHEDULE:
        for i, rgb in enumerate(photos):
            if (cond, i) not in frames:
                frames[(cond, i)] = rgb if name is None else degrade(rgb, name, args.severity, seed=i)

    env = dict(os.environ)
    env.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")  # full frames need it with Fast DDS
    if args.domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(args.domain_id)
    os.environ.update({k: env[k] for k in ("FASTDDS_BUILTIN_TRANSPORTS", "ROS_DOMAIN_ID") if k in env})
    logdir = Path(tempfile.mkdtemp(prefix="hirqa_demo_"))
    log_path = logdir / "hirqa_node.log"
    # the sample camera shows another photo every frame, which a per-camera reference would read as a
    # scene cut every frame: the demo judges each frame by the absolute thresholds alone (docs/gate.md)
    cmd = [sys.executable, "-m", "hirqa_ros.node.main", "--ros-args", "-r", f"__node:={NODE}",
           "-p", f"image_topics:=['{TOPIC}']", "-p", f"backend:={args.backend}", "-p", "relative:=false"]
    if args.model:
        cmd += ["-p", f"model_path:={Path(args.model).resolve()}"]
    print(f"starting hirqa_node (backend {args.backend}, relative:=false: the sample camera changes photo "
          f"every frame); its log: {log_path}")
    with open(log_path, "wb") as log:
        node = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        return _stream(args, node, log_path, frames, len(photos))
    finally:
        _stop(node)
        if args.show_node_log:
            print(log_path.read_text(errors="replace"))


def _wait_ready(node: subprocess.Popen, log_path: Path, timeout: float = 600.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        for line in text.splitlines():
            if "READY" in line:
                print(line.split("]: ", 1)[-1])
                return True
        if node.poll() is not None:
            print(f"hirqa_node exited with {node.returncode}:\n{text[-3000:]}", file=sys.stderr)
            return False
        time.sleep(0.2)
    print(f"hirqa_node not ready after {timeout:.0f} s; see {log_path}", file=sys.stderr)
    return False


def _stream(args, node, log_path: Path, frames: dict, n_photos: int) -> int:
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from hirqa_ros.node.harness import RosHarness
    from hirqa_ros.quality_msg import parse
    from hirqa_ros.topics import CameraTopics

    if not _wait_ready(node, log_path):
        return 1
    cam = RosHarness("hirqa_demo_camera")
    pub = cam.node.create_publisher(Image, TOPIC, qos_profile_sensor_data)
    sent: dict[tuple[int, int], tuple[int, str, float]] = {}  # stamp -> (frame, condition, sent time)
    results: dict[str, list[tuple[float, int, str | None]]] = {c: [] for c, _ in SCHEDULE}
    lock = threading.Lock()
    t_start = [0.0]

    def on_quality(msg: DiagnosticArray) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        with lock:
            info = sent.get(key)
        if info is None or not msg.status:
            return
        frame, cond, t_sent = info
        report = parse(msg)
        if report.inherited:  # gate_mode state: a forwarded frame under an earlier verdict, not a score
            return
        score, level = report.score, int(report.level)
        with lock:
            results[cond].append((score, level, report.fault))
        verdict = report.message.split(" (")[0]
        fault = "" if report.fault is None else f"  {report.fault} ({report.fault_confidence or 0:.2f})"
        print(f"{time.monotonic() - t_start[0]:7.1f}s  frame {frame:5d}  {cond:8s} score {score:.3f}  "
              f"{verdict:12s} {1000 * (time.monotonic() - t_sent):6.0f} ms{fault}", flush=True)

    sub = cam.node.create_subscription(DiagnosticArray, CameraTopics(TOPIC).quality, on_quality,
                                       QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    try:
        if not cam.wait_matched([pub], [sub], 60.0) and pub.get_subscription_count() == 0:
            print("the node never subscribed to the camera topic (DDS discovery failed?)", file=sys.stderr)
            return 1
        print(f"streaming {args.duration:.0f} s at {args.rate:g} Hz on {TOPIC}: "
              + " -> ".join(c for c, _ in SCHEDULE))
        print("   time  frame       condition score  verdict      latency  fault (confidence)")
        counts = {c: 0 for c, _ in SCHEDULE}
        try:
            _publish_frames(args, pub, frames, n_photos, counts, sent, lock, t_start)
            time.sleep(2.0)  # the last scores
        except KeyboardInterrupt:
            print("\ninterrupted")
        _summary(results, counts)
        return 0
    finally:
        cam.close()


def _publish_frames(args, pub, frames: dict, n_photos: int, counts: dict[str, int],
                    sent: dict[tuple[int, int], tuple[int, str, float]], lock: threading.Lock,
                    t_start: list[float]) -> None:
    """Publish ``--duration`` x ``--rate`` frames, the SCHEDULE's stretches in turn, each stamped now;
    ``sent`` (under ``lock``) maps a stamp to (frame, condition, send time); ``t_start[0]``: the start."""
    from hirqa_ros.node.harness import image_msg

    period = 1.0 / args.rate
    total = int(args.duration * args.rate)
    per_stretch = max(1, total // len(SCHEDULE))
    t_start[0] = time.monotonic()
    for i in range(total):
        cond = SCHEDULE[min(i // per_stretch, len(SCHEDULE) - 1)][0]
        msg = image_msg(frames[(cond, i % n_photos)], "demo_camera", time.time_ns())
        with lock:
            sent[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = (i, cond, time.monotonic())
        counts[cond] += 1
        pub.publish(msg)
        time.sleep(max(0.0, t_start[0] + (i + 1) * period - time.monotonic()))


def _summary(results: dict, counts: dict) -> None:
    import numpy as np

    from hirqa_ros.faults import dominant_fault

    print("\nsummary (rejected = verdict WARN or ERROR; frames the node skipped to keep up are not scored;"
          " fault = the most frequent class of the rejected frames)")
    print(f"{'condition':10s} {'sent':>6s} {'scored':>7s} {'mean score':>11s} {'rejected':>9s}  fault")
    for cond in dict.fromkeys(c for c, _ in SCHEDULE):
        r = results[cond]
        scores = np.asarray([s for s, _, _ in r], np.float64)
        rejected = np.mean([lv != 0 for _, lv, _ in r]) if r else float("nan")
        mean = f"{scores.mean():.3f}" if r else "n/a"
        dominant = dominant_fault(f for _, lv, f in r if lv != 0)
        fault = f"{dominant[0]} ({dominant[1]:.0%})" if dominant else "-"
        print(f"{cond:10s} {counts[cond]:6d} {len(r):7d} {mean:>11s} {rejected:9.0%}  {fault}" if r
              else f"{cond:10s} {counts[cond]:6d} {0:7d} {'n/a':>11s} {'n/a':>9s}  -")
