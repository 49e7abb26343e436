"""Gate-mode benchmark: camera rate in vs B_accepted rate out, publish->forward latency and the share of a
fault stretch leaked, per ``gate_mode``, camera count and CPU load; plus the per-frame cue's cost.

``python -m hirqa_ros.node.gate_bench [--modes scored,state] [--cameras 1:20,2:30] [--loads 0,1]``
(also ``python -m hirqa_ros.node.bench --gate ...``). Each run starts hirqa_node as a subprocess and
publishes 640x480 rgb8 frames over real DDS: ``--clean1`` s of a clean scene (the photo shifted by a
few pixels, with sensor noise, per frame), ``--dark`` s of the lights out (``low_light`` level 5),
``--clean2`` s clean again. B_accepted is read reliably (a reliable override), so a frame counts as
forwarded when the node forwarded it. ``--loads N``: N busy-loop processes load the CPU during the run.
"""
from __future__ import annotations

import argparse
import array
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hirqa_ros.node.harness import RosHarness, image_msg, set_stamp, start_node, stop_node
from hirqa_ros.topics import CameraTopics

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def _photo(w: int, h: int, seed: int) -> np.ndarray:
    import cv2

    from hirqa_ros.files import read_image

    files = sorted(SAMPLES.glob("*.jpg"))
    if not files:
        raise SystemExit(f"no sample photos in {SAMPLES}")
    return cv2.resize(read_image(files[seed % len(files)]), (w, h), interpolation=cv2.INTER_AREA)


def camera_frames(w: int, h: int, seed: int, n: int = 16) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` clean frames of one scene (shifted a few pixels, +-2 grey levels of noise each) and their
    lights-out versions (``low_light`` level 5)."""
    from hirqa_ros.degradations import degrade

    rgb = _photo(w, h, seed)
    rng = np.random.default_rng(seed)
    clean = []
    for _ in range(n):
        shifted = np.roll(rgb, (int(rng.integers(-4, 5)), int(rng.integers(-4, 5))), (0, 1)).astype(np.int16)
        clean.append(np.clip(shifted + rng.integers(-2, 3, rgb.shape), 0, 255).astype(np.uint8))
    return clean, [degrade(c, "low_light", 5, seed=seed * 100 + k) for k, c in enumerate(clean)]


def cue_cost(runs: int = 300) -> dict[str, tuple[float, float]]:
    """(p50, p95) ms of ``frame_cue.cue_of_msg`` on one 640x480 frame per input kind, in this process."""
    from types import SimpleNamespace

    from hirqa_ros.frame_cue import cue_of_msg
    from hirqa_ros.imgmsg import rgb_to_compressed_fields, rgb_to_image_fields

    rgb = _photo(640, 480, 0)
    msgs = {}
    for enc in ("rgb8", "bgr8"):
        f = rgb_to_image_fields(rgb, enc)
        msgs[f"raw {enc}"] = (SimpleNamespace(**{**f, "data": array.array("B", f["data"].tobytes())}), False)
    for fmt in ("jpeg", "png"):
        f = rgb_to_compressed_fields(rgb, fmt)
        data = array.array("B", bytes(f["data"]))
        msgs[f"compressed {fmt}"] = (SimpleNamespace(format=fmt, data=data), True)
    out = {}
    for name, (msg, compressed) in msgs.items():
        cue_of_msg(msg, compressed)
        ts = []
        for _ in range(runs if "png" not in name else max(20, runs // 10)):
            t0 = time.perf_counter()
            cue_of_msg(msg, compressed)
            ts.append((time.perf_counter() - t0) * 1000.0)
        out[name] = (float(np.percentile(ts, 50)), float(np.percentile(ts, 95)))
    return out


class _Client(RosHarness):
    """Publishes every camera's frames (best effort, like a camera) and records B_accepted arrivals."""

    def __init__(self, topics: list[str]) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image

        super().__init__(f"hirqa_gate_bench_{os.getpid()}")
        self.accepted: dict[str, dict[int, int]] = {t: {} for t in topics}  # stamp ns -> receive ns
        self.pubs = {t: self.node.create_publisher(Image, t, qos_profile_sensor_data) for t in topics}
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.subs = [self.node.create_subscription(Image, CameraTopics(t).accepted,
                                                   lambda m, t=t: self._on(t, m), qos) for t in topics]
        self.diagnostics: dict[str, dict[str, str]] = {}  # input topic -> its newest /diagnostics values
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, qos)

    def _on(self, topic: str, msg) -> None:
        now = time.time_ns()
        with self.lock:
            self.accepted[topic][msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = now

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            values = {kv.key: kv.value for kv in st.values}
            if "topic" in values:
                with self.lock:
                    self.diagnostics[values["topic"]] = values


def _start_node(topics: list[str], mode: str, args, log: Path) -> subprocess.Popen:
    """hirqa_node with a reliable, deep B_accepted per camera (every forwarded frame is counted)."""
    overrides = "".join(f"      {CameraTopics(t).accepted}:\n        publisher:\n"
                        f"          reliability: reliable\n          depth: 100\n" for t in topics)
    params = log.with_suffix(".yaml")
    params.write_text(f"/**:\n  ros__parameters:\n    qos_overrides:\n{overrides}")
    cmd = [sys.executable, "-m", "hirqa_ros.node.main", "--ros-args", "-r", "__node:=hirqa_gate_bench_node",
           "--params-file", str(params),
           "-p", "image_topics:=[" + ", ".join(f"'{t}'" for t in topics) + "]",
           "-p", f"backend:={args.backend}", "-p", f"gate_mode:={mode}"]
    if args.model:
        cmd += ["-p", f"model_path:={args.model}"]
    for p in args.param:
        cmd += ["-p", p]
    return start_node(cmd, log)


def _publish_scenario(client: _Client, topics: list[str], msgs: list[tuple[list, list]], args,
                      rate: float) -> list[list[tuple[int, float, str]]]:
    """Publish the clean / dark / clean stretches at ``rate`` Hz per camera; per camera the list of
    (stamp ns, seconds since start, kind) of the published frames."""
    total = args.clean1 + args.dark + args.clean2
    sent: list[list[tuple[int, float, str]]] = [[] for _ in topics]
    t0 = time.monotonic()
    k = 0
    while k / rate < total:
        t = k / rate
        kind = "dark" if args.clean1 <= t < args.clean1 + args.dark else "clean"
        for i, topic in enumerate(topics):
            clean, dark = msgs[i]
            pool = dark if kind == "dark" else clean
            msg = pool[k % len(pool)]
            ns = time.time_ns()
            set_stamp(msg, ns)
            client.pubs[topic].publish(msg)
            sent[i].append((ns, t, kind))
        k += 1
        time.sleep(max(0.0, t0 + k / rate - time.monotonic()))
    return sent


def _share(frames: list[tuple[int, float, str]], accepted: dict[int, int], lo: float, hi: float,
           kind: str) -> float | None:
    window = [s for s, t, k in frames if lo <= t < hi and k == kind]
    return 100.0 * sum(s in accepted for s in window) / len(window) if window else None


def scenario_metrics(sent: list[tuple[int, float, str]], accepted: dict[int, int], args) -> dict:
    """The issue's numbers for one camera: % clean forwarded from 4 s on, latency of those, accepted rate,
    % dark leaked from 1 s after the onset (and in its first second), % clean forwarded from 2 s after."""
    on, off = args.clean1, args.clean1 + args.dark
    steady = [(s, t) for s, t, k in sent if 4.0 <= t < on and k == "clean"]
    lat = [(accepted[s] - s) / 1e6 for s, _ in steady if s in accepted]
    return {
        "in_rate_hz": len(steady) / max(on - 4.0, 1e-9),
        "out_rate_hz": len(lat) / max(on - 4.0, 1e-9),
        "clean_forwarded_pct": _share(sent, accepted, 4.0, on, "clean"),
        "latency_p50_ms": float(np.percentile(lat, 50)) if lat else None,
        "latency_p95_ms": float(np.percentile(lat, 95)) if lat else None,
        "dark_leaked_pct": _share(sent, accepted, on + 1.0, off, "dark"),
        "dark_leaked_first_s_pct": _share(sent, accepted, on, on + 1.0, "dark"),
        "recovered_pct": _share(sent, accepted, off + 2.0, 1e9, "clean"),
    }


def _busy_loops(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def run_scenario(mode: str, cameras: int, rate: float, load: int, args) -> dict:
    """One run: node up, scenario published, metrics per camera and pooled over cameras."""
    topics = [f"/gate_bench/cam{i}/image_raw" for i in range(cameras)]
    log = Path(tempfile.mkdtemp(prefix="hirqa_gate_bench_")) / "node.log"
    msgs = []
    for i in range(cameras):
        clean, dark = camera_frames(640, 480, seed=i)
        msgs.append(([image_msg(c, f"cam{i}") for c in clean], [image_msg(d, f"cam{i}") for d in dark]))
    node = _start_node(topics, mode, args, log)
    client, loads = None, []
    try:
        client = _Client(topics)
        if not client.wait_matched(list(client.pubs.values()), client.subs, 60.0):
            raise RuntimeError("DDS discovery did not match the node within 60 s")
        loads = _busy_loops(load)
        uptime = os.getloadavg()
        sent = _publish_scenario(client, topics, msgs, args, rate)
        time.sleep(1.5)
        with client.lock:
            accepted = {t: dict(a) for t, a in client.accepted.items()}
            diag = dict(client.diagnostics)
        per_camera = [scenario_metrics(s, accepted[t], args) for s, t in zip(sent, topics)]
        for m, t in zip(per_camera, topics):
            d = diag.get(t, {})
            m.update({k: d.get(k, "") for k in ("frames_received", "frames_scored", "frames_forwarded",
                                                "frames_forwarded_inherited", "frames_held_by_reason")})
        ready = next((ln for ln in log.read_text(errors="replace").splitlines() if "READY" in ln), "")
        backend = ready.split("backend=", 1)[1].split()[0] if "backend=" in ready else "?"
        return {"mode": mode, "cameras": cameras, "rate_hz": rate, "busy_loops": load, "backend": backend,
                "params": list(args.param),
                "loadavg_1m_at_start": uptime[0], "per_camera": per_camera}
    finally:
        for p in loads:
            p.kill()
            p.wait(5)
        if client is not None:
            client.close()
        stop_node(node, 20)


def _fmt(x: float | None, spec: str = ".0f") -> str:
    return "n/a" if x is None else format(x, spec)


def table(results: list[dict]) -> str:
    """The Markdown table of the runs (each camera of a run on its own row)."""
    rows = ["| mode | cams x Hz | load | cam | in / out Hz | clean fwd from 4 s | latency p50 / p95 ms | "
            "dark leaked from 1 s (first s) | clean fwd from 2 s after |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for i, m in enumerate(r["per_camera"]):
            rows.append(
                f"| {r['mode']} | {r['cameras']} x {r['rate_hz']:g} | "
                f"{r['busy_loops']} busy, la {r['loadavg_1m_at_start']:.1f} | {i} | "
                f"{m['in_rate_hz']:.1f} / {m['out_rate_hz']:.1f} | {_fmt(m['clean_forwarded_pct'])} % | "
                f"{_fmt(m['latency_p50_ms'])} / {_fmt(m['latency_p95_ms'])} | "
                f"{_fmt(m['dark_leaked_pct'])} % ({_fmt(m['dark_leaked_first_s_pct'])} %) | "
                f"{_fmt(m['recovered_pct'])} % |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hirqa_ros.node.gate_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--modes", default="scored,state", help="gate modes to run (default scored,state)")
    ap.add_argument("--cameras", default="1:20,2:30", help="camera count:rate Hz pairs (default 1:20,2:30)")
    ap.add_argument("--loads", default="0,1", help="busy-loop processes during the run (default 0,1)")
    ap.add_argument("--clean1", type=float, default=12.0, help="seconds clean before the fault (default 12)")
    ap.add_argument("--dark", type=float, default=6.0, help="seconds of lights out (default 6)")
    ap.add_argument("--clean2", type=float, default=8.0, help="seconds clean after it (default 8)")
    ap.add_argument("--backend", default="auto",
                    help="node backend (default auto: int8 ONNX Runtime on a CPU)")
    ap.add_argument("--model", default="", help="model directory (default: the installed default)")
    ap.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                    help="another node parameter (repeatable), e.g. max_verdict_age_s:=2.0")
    ap.add_argument("--no-cue", action="store_true", help="skip the per-frame cue cost measurement")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)
    os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
    print(f"{os.cpu_count()} CPUs visible; load average {os.getloadavg()[0]:.2f}", flush=True)
    if not args.no_cue:
        for name, (p50, p95) in cue_cost().items():
            print(f"cue of one 640x480 frame, {name}: p50 {p50:.2f} ms, p95 {p95:.2f} ms", flush=True)
    results = []
    for spec in args.cameras.split(","):
        n, rate = spec.split(":")
        for load in (int(x) for x in args.loads.split(",")):
            for mode in args.modes.split(","):
                r = run_scenario(mode.strip(), int(n), float(rate), load, args)
                results.append(r)
                print(json.dumps(r), flush=True)
    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
