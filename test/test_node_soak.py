"""10,000 small frames or more through hirqa_node from a separate publisher process: memory and threads
stay flat."""
from __future__ import annotations

import statistics
import time

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")

from helpers_node import (
    NodeProcess,
    RosClient,
    domain_id,
    proc_rss_kb,
    proc_threads,
    start_publisher,
    status_values,
)

pytestmark = pytest.mark.ros

FRAMES = 10_000  # per publisher run, at 1,000 Hz
MIN_SCORED = 1_000  # runs follow one another until the node has scored this many (a loaded CPU scores fewer)
TOPIC = "/soak/image"


@pytest.mark.slow
def test_ten_thousand_frames_no_growth_in_memory_or_threads(random_model_dir, tmp_path):
    domain = domain_id(11)
    params = {"image_topics": [TOPIC], "model_path": str(random_model_dir), "backend": "onnxruntime",
              "diagnostics_period_s": 0.5}
    node = NodeProcess(params, domain, tmp_path / "node.log")
    client = pub = None
    try:
        node.wait_ready()
        client = RosClient(domain)
        client.watch(TOPIC, accepted=False)
        client.watch_diagnostics()
        samples: list[tuple[int, int, int]] = []  # (quality messages so far, RSS kB, threads)
        deadline = time.monotonic() + 300
        for run in range(10):
            pub = start_publisher(domain, TOPIC, count=FRAMES, rate=1000.0, size="32x32",
                                  stamp_base=1_000_000_000 * (1 + run))
            while pub.poll() is None and time.monotonic() < deadline:
                with client.lock:
                    n = len(client.quality[TOPIC])
                samples.append((n, proc_rss_kb(node.pid()), proc_threads(node.pid())))
                time.sleep(0.25)
            assert pub.wait(30) == 0, pub.stdout.read() if pub.stdout else ""
            with client.lock:
                n = len(client.quality[TOPIC])
            if n >= MIN_SCORED or time.monotonic() > deadline:
                break
        time.sleep(1.0)
        samples.append((len(client.quality[TOPIC]), proc_rss_kb(node.pid()), proc_threads(node.pid())))
        st = client.latest_status(TOPIC)
        v = status_values(st)
        received, scored = int(v["frames_received"]), int(v["frames_scored"])
        # how many of each run's 10,000 the node's executor takes in depends on the CPU (best effort, keep
        # last 1: the rest are overwritten inside DDS); the runs went on until it had scored MIN_SCORED
        assert received >= MIN_SCORED and scored >= MIN_SCORED, v
        assert int(v["frames_dropped"]) + scored + int(v["decode_errors"]) == received
        # warm-up: ignore samples until a fifth of the scored frames are in
        warm = [s for s in samples if s[0] >= scored // 5]
        assert len(warm) >= 8, f"too few samples after warm-up: {samples}"
        first = statistics.median(s[1] for s in warm[:4])
        last = statistics.median(s[1] for s in warm[-4:])
        growth_mb = (last - first) / 1024
        # a leak of one message (32x32 rgb8 + header, ~3.2 kB) per received frame: ~3.2 kB x >1,000
        assert growth_mb < 4.0, f"RSS grew {growth_mb:.1f} MB over the run: {warm}"
        # no growth: a leak (a thread per frame or batch) keeps growing, so compare the end with the start;
        # Fast DDS briefly runs extra transport threads (seen here: 21 -> 24 for one 0.25 s sample, back
        # to 21), and the count may drop by the thread that served the publisher once it left
        threads = [s[2] for s in warm]
        assert statistics.median(threads[-4:]) <= statistics.median(threads[:4]), \
            f"thread count grew: {threads}"
        print(f"\nRSS samples (frames scored, kB, threads): {warm}")
        print(f"\nsoak: received {received}, scored {scored}, RSS {first / 1024:.1f} -> "
              f"{last / 1024:.1f} MB, threads {warm[-1][2]}")
    finally:
        if pub is not None and pub.poll() is None:
            pub.kill()
        if client is not None:
            client.close()
        node.stop()
