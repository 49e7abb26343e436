"""Helpers for the node's integration tests: start hirqa_node as a subprocess, talk to it over real DDS."""
from __future__ import annotations

import array
import fcntl
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.node.harness import RosHarness, image_msg

REPO = Path(__file__).resolve().parents[1]


DOMAIN_LOCK_DIR = Path(os.environ.get("HIRQA_TEST_DOMAIN_LOCKS", "/tmp/hirqa_ros_test_domains"))
_domains: dict[int, tuple[int, Any]] = {}  # offset -> (domain id, open lock file held until exit)


def domain_id(offset: int) -> int:
    """A ROS domain id reserved for this test process and ``offset`` (one per test module).

    Concurrent test runs on one machine (CI jobs, several checkouts) must never share a domain:
    two runs in one domain see each other's nodes on the same topic names (cross-talk, wrong
    counts, discovery of participants that die under them). A hash of the pid alone collides
    often (8 modules x 100 ids), so each id is reserved with an exclusive ``flock`` on
    ``DOMAIN_LOCK_DIR/<id>.lock``, held until this process exits (the kernel drops it even on
    SIGKILL), and ids that a running process has in its ``ROS_DOMAIN_ID`` (other ROS programs,
    test runs without this lock) are skipped. Kept in 1..100: Fast DDS derives its ports from the
    domain id, and ids above ~101 land in Linux's ephemeral port range, where another socket can
    already hold the port."""
    if offset in _domains:
        return _domains[offset][0]
    DOMAIN_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    taken = {d for d, _ in _domains.values()} | _domains_in_environ()
    start = (os.getpid() * 13 + offset * 37) % 100
    for k in range(100):
        d = 1 + (start + k) % 100
        if d in taken:
            continue
        f = open(DOMAIN_LOCK_DIR / f"{d}.lock", "a")  # held open: the lock lives as long as the file
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        _domains[offset] = (d, f)
        return d
    raise RuntimeError(f"all ROS domain ids 1..100 are reserved by other test processes ({DOMAIN_LOCK_DIR})")


def _domains_in_environ() -> set[int]:
    """ROS_DOMAIN_ID values of the running processes we may read."""
    found: set[int] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        for item in env.split(b"\0"):
            if item.startswith(b"ROS_DOMAIN_ID=") and item[14:].isdigit():
                found.add(int(item[14:]))
    return found


SHM_DIR = Path("/dev/shm")
_SEGMENT = re.compile(r"^(fastdds|fastrtps)_([0-9a-f]{16})$")
_PORT = re.compile(r"^(fastdds|fastrtps)_port(\d+)$")


def _unlocked(path: Path) -> bool:
    """True when nobody holds a lock on ``path`` (its owner process is gone)."""
    try:
        with open(path, "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when f closes
        return True
    except OSError:
        return False


def _mapped_shm_names() -> set[str]:
    """Names of /dev/shm files some live process has mapped (from /proc/*/maps)."""
    names: set[str] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    if "/dev/shm/" in line:
                        names.add(line.split("/dev/shm/", 1)[1].split()[0])
        except OSError:
            continue
    return names


def clean_stale_dds_shm(shm_dir: Path = SHM_DIR) -> list[str]:
    """Remove the Fast DDS shared-memory files whose owners are gone; returns the removed names.

    Fast DDS (SHM transport, used by LARGE_DATA and the default builtin transports) keeps in
    /dev/shm one data segment per participant (``fastdds_<16 hex>`` + ``_el`` lock) and one
    file per listening port (``fastdds_port<N>`` + ``_el``/``_sl`` locks + ``sem.fastdds_port<N>_mutex``).
    A process that ends without DDS teardown (SIGKILL, ``os._exit``) leaves them behind. Like
    ``fastdds shm clean``, a file counts as stale when nobody holds its lock; a port file
    without any lock file (created by a writer for a reader that never came) is stale when no
    live process has it mapped. Files in use are never touched."""
    try:
        names = set(os.listdir(shm_dir))
    except OSError:
        return []
    mapped: set[str] | None = None
    removed: list[str] = []

    def rm(*files: str) -> None:
        for n in files:
            try:
                (shm_dir / n).unlink()
                removed.append(n)
            except OSError:
                pass

    for n in sorted(names):
        m = _SEGMENT.match(n)
        if m and f"{n}_el" in names and _unlocked(shm_dir / f"{n}_el"):
            rm(n, f"{n}_el")
            continue
        m = _PORT.match(n)
        if not m:
            continue
        locks = [x for x in (f"{n}_el", f"{n}_sl") if x in names]
        if locks:
            stale = all(_unlocked(shm_dir / x) for x in locks)
        else:
            if mapped is None:
                mapped = _mapped_shm_names()
            stale = n not in mapped
        if stale:
            rm(n, *locks, f"sem.{n}_mutex")
    return removed


def ros_env(domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain), FASTDDS_BUILTIN_TRANSPORTS="LARGE_DATA", OMP_NUM_THREADS="1",
               PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
    env.pop("ROS_LOCALHOST_ONLY", None)
    return env


def param_arg(name: str, value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(float(value))
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(f"'{v}'" for v in value) + "]"
    else:
        text = str(value)
    return f"{name}:={text}"


_live_nodes: list[NodeProcess] = []  # started and not stopped (RosClient.close stops them first)


class NodeProcess:
    """hirqa_node in a subprocess; its output goes to a log file the tests can read."""

    def __init__(self, params: dict[str, Any], domain: int, log_path: Path, name: str | None = None,
                 ros_args: list[str] | tuple[str, ...] = (), params_files: list[Path] | tuple[Path, ...] = (),
                 argv: list[str] | None = None) -> None:
        """``argv``: the node's whole command line after the executable (e.g. what a launch file builds)."""
        cmd = [sys.executable, "-m", "hirqa_ros.node.main", "--ros-args"]
        if name:
            cmd += ["-r", f"__node:={name}"]
        cmd += list(ros_args)
        for f in params_files:
            cmd += ["--params-file", str(f)]
        for k, v in params.items():
            cmd += ["-p", param_arg(k, v)]
        if argv is not None:
            cmd = [sys.executable, "-m", "hirqa_ros.node.main", *argv]
        self.log_path = log_path
        self._log = open(log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(cmd, env=ros_env(domain), stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=REPO)
        self.domain = domain
        _live_nodes.append(self)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0, text: str = "READY") -> None:
        """Wait for ``text`` in the log (READY: configured and active)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"hirqa_node exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        raise AssertionError(f"hirqa_node not ready after {timeout} s:\n{self.log()}")

    def pid(self) -> int:
        return self.proc.pid

    def interrupt(self, timeout: float) -> int | None:
        """SIGINT; the exit code, or None when it did not exit within ``timeout`` seconds."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self in _live_nodes:
            _live_nodes.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:  # a clean exit tears DDS down (no stale /dev/shm files); slow on a busy machine
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not self._log.closed:
            self._log.close()


def params_file(path: Path, params: dict[str, Any]) -> Path:
    """A ros__parameters YAML for every node (nested dicts allowed, e.g. qos_overrides)."""
    import yaml

    class NoAliases(yaml.SafeDumper):  # rcl's YAML parser refuses anchors/aliases
        def ignore_aliases(self, data: Any) -> bool:
            return True

    path.write_text(yaml.dump({"/**": {"ros__parameters": params}}, Dumper=NoAliases))
    return path


def reliable_accepted(bases: list[str], transports: list[str] | None = None) -> dict[str, Any]:
    """qos_overrides that make B_accepted deep (tests count every accepted frame; by default it is
    reliable, keep last 5)."""
    from hirqa_ros.topics import CameraTopics

    kinds = transports or ["raw"] * len(bases)
    deep = {"publisher": {"reliability": "reliable", "depth": 100}}
    return {"qos_overrides": {CameraTopics(b, k).accepted: deep for b, k in zip(bases, kinds)}}


def proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def proc_threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


class RosClient(RosHarness):
    """The test side: publishers of images and subscribers of quality, accepted and /diagnostics."""

    def __init__(self, domain: int, name: str = "hirqa_test_client") -> None:
        import rclpy

        # this process's DDS participant must use the same transports as the node's
        os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"
        self.rclpy = rclpy
        self.domain = domain
        self.quality: dict[str, list] = defaultdict(list)
        self.accepted: dict[str, list] = defaultdict(list)
        self.diagnostics: list = []
        self.pubs: dict[str, Any] = {}
        self.subs: list = []
        super().__init__(name, domain)

    def _store(self, bucket: dict[str, list], topic: str, msg: Any) -> None:
        with self.lock:
            bucket[topic].append((time.monotonic(), msg))

    def publisher(self, topic: str, compressed: bool = False, reliable: bool = False):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image

        rel = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        qos = QoSProfile(depth=10 if reliable else 5, reliability=rel)
        pub = self.node.create_publisher(CompressedImage if compressed else Image, topic, qos)
        self.pubs[topic] = pub
        return pub

    def watch(self, base: str, accepted: bool = True, transport: str = "raw",
              accepted_reliable: bool = False) -> None:
        """Subscribe B_quality and B_accepted(/compressed) of base topic ``base``; stored under ``base``.

        B_accepted is reliable (keep last 5) by default; it is read best effort (which matches any
        writer) unless ``accepted_reliable`` (for tests that count every accepted frame: give the
        node a deep B_accepted too, see :func:`reliable_accepted`)."""
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CompressedImage, Image

        from hirqa_ros.topics import CameraTopics

        topics = CameraTopics(base, transport)
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.subs.append(self.node.create_subscription(
            DiagnosticArray, topics.quality, lambda m, t=base: self._store(self.quality, t, m), qos))
        if accepted:
            best_effort = QoSProfile(depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT)
            aqos = qos if accepted_reliable else best_effort
            self.subs.append(self.node.create_subscription(
                CompressedImage if topics.compressed else Image, topics.accepted,
                lambda m, t=base: self._store(self.accepted, t, m), aqos))

    def watch_diagnostics(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        def store(msg):
            with self.lock:
                self.diagnostics.append((time.monotonic(), msg))

        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.subs.append(self.node.create_subscription(DiagnosticArray, "/diagnostics", store, qos))

    def wait_matched(self, topics: list[str], timeout: float = 30.0) -> None:
        """Wait until the node subscribes to our image topics and publishes the quality topics we watch."""
        if not super().wait_matched([self.pubs[t] for t in topics if t in self.pubs], self.subs, timeout):
            raise AssertionError(f"DDS discovery did not match within {timeout} s for {topics}")

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def call(self, srv_type: Any, name: str, request: Any, timeout: float = 20.0) -> Any:
        """Call service ``name`` and return its response (waits for the service first)."""
        cli = self.node.create_client(srv_type, name)
        try:
            assert cli.wait_for_service(timeout_sec=timeout), f"service {name} not available"
            fut = cli.call_async(request)
            deadline = time.monotonic() + timeout
            while not fut.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert fut.done(), f"{name} call timed out"
            return fut.result()
        finally:
            self.node.destroy_client(cli)

    def set_params(self, node_name: str, **values: Any) -> list:
        """Set parameters on a running node, all at once (set_parameters_atomically); one result each."""
        from rcl_interfaces.srv import SetParametersAtomically
        from rclpy.parameter import Parameter

        req = SetParametersAtomically.Request(parameters=[Parameter(k, value=v).to_parameter_msg()
                                                          for k, v in values.items()])
        res = self.call(SetParametersAtomically, f"/{node_name.lstrip('/')}/set_parameters_atomically", req)
        return [res.result] * len(values)

    def list_params(self, node_name: str) -> list[str]:
        from rcl_interfaces.srv import ListParameters

        res = self.call(ListParameters, f"/{node_name.lstrip('/')}/list_parameters", ListParameters.Request())
        return list(res.result.names)

    def get_params(self, node_name: str, names: list[str]) -> dict[str, Any]:
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        req = GetParameters.Request(names=names)
        res = self.call(GetParameters, f"/{node_name.lstrip('/')}/get_parameters", req)
        return {n: parameter_value_to_python(v) for n, v in zip(names, res.values)}

    def lifecycle(self, node_name: str, transition: int | None = None) -> Any:
        """Trigger ``transition`` (lifecycle_msgs/Transition id) through the node's change_state service and
        return its success, or with no transition return the current state id (get_state)."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState, GetState

        name = f"/{node_name.lstrip('/')}"
        if transition is None:
            return self.call(GetState, f"{name}/get_state", GetState.Request()).current_state.id
        req = ChangeState.Request(transition=Transition(id=transition))
        return self.call(ChangeState, f"{name}/change_state", req, timeout=60.0).success

    def latest_status(self, name_suffix: str, after: float = 0.0):
        """The newest /diagnostics status received after ``after`` whose name ends with ``name_suffix``
        or whose camera (its ``topic`` value) is base ``name_suffix`` (raw or compressed)."""
        with self.lock:
            for t, arr in reversed(self.diagnostics):
                if t < after:
                    break
                for st in arr.status:
                    topic = status_values(st).get("topic")
                    if st.name.endswith(name_suffix) or topic in (name_suffix, name_suffix + "/compressed"):
                        return st
        return None

    def close(self) -> None:
        """Stop the nodes of this domain, stop spinning, then tear down (never shut the context down
        under a spinning executor).

        The nodes go first: Fast DDS 3.2 blocks deleting a participant with the LARGE_DATA TCP
        transport while a peer is still up (gdb on a hung suite: ``TCPChannelResourceBasic::disconnect``
        under ``~TCPv4Transport`` waits for the mutex a listening thread holds while it sits in
        ``read`` on the idle connection, and rclpy holds the GIL meanwhile, so nothing else runs);
        the read returns once the peer has closed its side."""
        for node in list(_live_nodes):
            if node.domain == self.domain:
                node.stop()
        super().close()


def make_image(rgb: np.ndarray, stamp_ns: int, frame_id: str = "cam", encoding: str = "rgb8",
               override: dict[str, Any] | None = None):
    """An rclpy sensor_msgs/Image holding ``rgb``; ``override`` replaces fields (to build broken messages)."""
    return image_msg(rgb, frame_id, stamp_ns, encoding, override)


def make_compressed(data: bytes, stamp_ns: int, fmt: str = "jpeg", frame_id: str = "cam"):
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.format = fmt
    msg.data = array.array("B", data)
    return msg


def status_values(status) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def level_of(status) -> int:
    lv = status.level
    return lv[0] if isinstance(lv, (bytes, bytearray)) else int(lv)


def scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A photo-like synthetic scene: shapes, edges and texture (sharp), reproducible."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    y, x = np.mgrid[0:h, 0:w]
    img[...] = np.stack([80 + 100 * x / w, 90 + 80 * y / h, 150 - 60 * x / w], axis=2).astype(np.uint8)
    for _ in range(12):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        p = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        if rng.random() < 0.5:
            cv2.circle(img, p, int(rng.integers(3, max(4, h // 4))), c, -1)
        else:
            q = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.rectangle(img, p, q, c, -1)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def publish_main(argv: list[str] | None = None) -> int:
    """A camera in its own process: ``python test/helpers_node.py --topic T --count N --rate HZ``."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--domain", type=int, required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--rate", type=float, default=10.0, help="frames/s; 0 = as fast as possible")
    ap.add_argument("--size", default="64x48")
    ap.add_argument("--stamp-base", type=int, default=1_000_000_000)
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    client = RosClient(args.domain, name=f"hirqa_test_camera_{os.getpid()}")
    pub = client.publisher(args.topic)
    client.wait_matched([args.topic], timeout=60)
    print("matched", flush=True)
    frames = [scene(h, w, seed=i) for i in range(4)]
    msgs = [make_image(frames[i % 4], args.stamp_base + i) for i in range(min(args.count, 64))]
    period = 1.0 / args.rate if args.rate > 0 else 0.0
    t0 = time.monotonic()
    for i in range(args.count):
        msg = msgs[i % len(msgs)]
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(args.stamp_base + i, 1_000_000_000)
        pub.publish(msg)
        if period:
            time.sleep(max(0.0, t0 + (i + 1) * period - time.monotonic()))
    print(f"done {args.count}", flush=True)
    time.sleep(0.5)
    # tear DDS down so its /dev/shm files go with it, but never wait more than 10 s for it
    # (Fast DDS shutdown sometimes blocks for tens of seconds; this process has nothing left to deliver)
    closer = threading.Thread(target=client.close, daemon=True)
    closer.start()
    closer.join(10)
    os._exit(0)


def start_publisher(domain: int, topic: str, count: int, rate: float, size: str = "64x48",
                    stamp_base: int = 1_000_000_000) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--domain", str(domain), "--topic", topic,
           "--count", str(count), "--rate", str(rate), "--size", size, "--stamp-base", str(stamp_base)]
    return subprocess.Popen(cmd, env=ros_env(domain), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=REPO, text=True)


if __name__ == "__main__":
    sys.exit(publish_main())
