"""The ROS client side of the node benchmarks and tests: an rclpy node in its own context, spun on a
background thread; image messages; hirqa_node started as a subprocess and stopped with SIGINT."""
from __future__ import annotations

import array
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np


class RosHarness:
    """An rclpy node ``name`` in a context of its own (``domain``: its ROS domain id, None: the
    environment's), spun every 50 ms on a daemon thread until :meth:`close`. Subclasses add publishers
    and subscriptions to ``self.node`` and guard what the callbacks store with ``self.lock``."""

    def __init__(self, name: str, domain: int | None = None) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.ctx = rclpy.Context()
        if domain is None:
            rclpy.init(context=self.ctx)
        else:
            rclpy.init(context=self.ctx, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.ctx)
        self.lock = threading.RLock()
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while not self.stop.is_set() and self.ctx.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:
                if not self.ctx.ok():
                    return
                raise

    def wait_matched(self, pubs: list[Any], subs: list[Any], timeout: float) -> bool:
        """True once every publisher has a subscriber and every subscription a publisher (then 1 s
        more, for the reverse discovery to settle); False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() > 0 for p in pubs) and all(s.get_publisher_count() > 0
                                                                          for s in subs):
                time.sleep(1.0)
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop spinning, then tear down (never shut the context down under a spinning executor)."""
        self.stop.set()
        self.thread.join(5)
        self.executor.shutdown(timeout_sec=1)
        self.node.destroy_node()
        self.ctx.try_shutdown()


def set_stamp(msg: Any, stamp_ns: int) -> None:
    """Set a message's header stamp from nanoseconds."""
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)


def image_msg(rgb: np.ndarray, frame_id: str = "cam", stamp_ns: int = 0, encoding: str = "rgb8",
              override: dict[str, Any] | None = None) -> Any:
    """An rclpy sensor_msgs/Image holding ``rgb`` (through the project's converter); ``override``
    replaces fields afterwards (to build broken messages)."""
    from sensor_msgs.msg import Image

    from hirqa_ros.imgmsg import rgb_to_image_fields

    f = rgb_to_image_fields(rgb, encoding)
    f.update(override or {})
    msg = Image()
    set_stamp(msg, stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width, msg.encoding = int(f["height"]), int(f["width"]), str(f["encoding"])
    msg.is_bigendian, msg.step = int(f["is_bigendian"]), int(f["step"])
    data = f["data"]
    msg.data = data if isinstance(data, array.array) else array.array("B", bytes(data))
    return msg


def start_node(cmd: list[str], log: Path, ready_timeout: float = 600.0, **popen: Any) -> subprocess.Popen:
    """Run ``cmd`` (hirqa_node) with its output in ``log`` and wait for READY in it; RuntimeError (with
    the log's end) when it exits or is not ready within ``ready_timeout`` seconds."""
    with open(log, "wb") as out:
        node = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **popen)
    deadline = time.monotonic() + ready_timeout
    while "READY" not in log.read_text(errors="replace"):
        if node.poll() is not None or time.monotonic() > deadline:
            stop_node(node, 10)
            raise RuntimeError(f"node did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    return node


def stop_node(node: subprocess.Popen, timeout: float) -> None:
    """SIGINT (a clean exit tears DDS down), SIGKILL after ``timeout`` seconds."""
    if node.poll() is None:
        node.send_signal(signal.SIGINT)
        try:
            node.wait(timeout)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait(5)
