"""Publish a bag through rclpy with its recorded timing, header stamps and QoS (``hirqa bag-play``):
a small stand-in for ``ros2 bag play`` on machines without rosbag2."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosidl_parser.definition import AbstractNestedType, BasicType, NamespacedType

from hirqa_ros.bag.reader import BagReader, TopicInfo

log = logging.getLogger(__name__)

_BYTE_TYPES = ("uint8", "octet", "byte")
# Fast DDS teardown (with LARGE_DATA's TCP transport) was seen blocking for many seconds inside C
# code holding the GIL; the command-line player therefore skips it and ends its process directly.
_LEFT_FOR_EXIT: list = []


class NoSubscribers(RuntimeError):
    """--wait-for-subscribers timed out: nothing was published."""


def ros_message_class(msgtype: str) -> type:
    """rclpy class of ``pkg/msg/Name`` (ImportError when the package is not installed)."""
    parts = msgtype.split("/")
    if len(parts) == 3:
        pkg, kind, name = parts
    elif len(parts) == 2:  # pkg/Name
        (pkg, name), kind = parts, "msg"
    else:
        raise ValueError(f"not a message type name: {msgtype!r}")
    module = importlib.import_module(f"{pkg}.{kind}")
    return getattr(module, name)


def _class_of(t: NamespacedType) -> type:
    return getattr(importlib.import_module(".".join(t.namespaces)), t.name)


def to_ros(msg: Any, cls: type) -> Any:
    """Copy a deserialised rosbags message (dataclass) into a new rclpy message of class ``cls``,
    field by field (fields the rclpy type lacks, like ROS 1's ``Header.seq``, are dropped)."""
    out = cls()
    for (name, _), slot in zip(cls.get_fields_and_field_types().items(), cls.SLOT_TYPES):
        if not hasattr(msg, name):
            continue
        val = getattr(msg, name)
        if isinstance(slot, NamespacedType):
            setattr(out, name, to_ros(val, _class_of(slot)))
        elif isinstance(slot, AbstractNestedType):
            vt = slot.value_type
            if isinstance(vt, NamespacedType):
                sub = _class_of(vt)
                setattr(out, name, [to_ros(v, sub) for v in val])
            elif isinstance(vt, BasicType) and vt.typename in _BYTE_TYPES:
                data = np.asarray(val, dtype=np.uint8).tobytes() if not isinstance(val, bytes) else val
                setattr(out, name, data if vt.typename != "octet" else [bytes([b]) for b in data])
            else:
                setattr(out, name, np.asarray(val).tolist() if isinstance(val, np.ndarray) else list(val))
        elif isinstance(slot, BasicType) and slot.typename in ("octet", "byte") and isinstance(val, int):
            setattr(out, name, bytes([val]))
        elif isinstance(slot, BasicType) and slot.typename == "char" and isinstance(val, int):
            setattr(out, name, chr(val))
        else:
            setattr(out, name, val.item() if isinstance(val, np.generic) else val)
    return out


def qos_from_recorded(info: TopicInfo, reliable: bool | None = None, depth: int | None = None) -> QoSProfile:
    """The publisher QoS: the recorded offered QoS of the topic (first profile), optionally overridden.

    Without a recorded profile: reliable, volatile, keep last 10 (rosbag2's default)."""
    from rosbags.interfaces import QosDurability, QosReliability

    q = info.qos[0] if info.qos else None
    rel = ReliabilityPolicy.RELIABLE
    dur = DurabilityPolicy.VOLATILE
    d = 10
    if q is not None:
        if q.reliability == QosReliability.BEST_EFFORT:
            rel = ReliabilityPolicy.BEST_EFFORT
        if q.durability == QosDurability.TRANSIENT_LOCAL:
            dur = DurabilityPolicy.TRANSIENT_LOCAL
        d = q.depth if q.depth and q.depth > 0 else 10
    if reliable is not None:
        rel = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth or d, reliability=rel, durability=dur)


@dataclass
class PlayStats:
    published: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: int = 0
    loops: int = 0
    wall_s: float = 0.0


class BagPlayer(Node):
    """Publishes the chosen topics of an opened bag, paced by bag time / ``rate``."""

    def __init__(
        self,
        reader: BagReader,
        topics: Sequence[str] | None = None,
        rate: float = 1.0,
        clock: bool = False,
        clock_hz: float = 40.0,
        reliable: bool | None = None,
        depth: int | None = None,
        node_name: str = "hirqa_bag_play",
    ) -> None:
        super().__init__(node_name)
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.reader = reader
        self.rate = rate
        self.stats = PlayStats()
        self.pubs: dict[str, tuple[Any, type]] = {}
        wanted = list(topics) if topics else sorted(reader.topics)
        for t in wanted:
            info = reader.topics.get(t)
            if info is None:
                self.stats.skipped[t] = "not in the bag"
                continue
            try:
                cls = ros_message_class(info.msgtype)
            except (ImportError, AttributeError, ValueError):
                self.stats.skipped[t] = f"type {info.msgtype} is not installed for rclpy"
                continue
            qos = qos_from_recorded(info, reliable, depth)
            self.pubs[t] = (self.create_publisher(cls, t, qos), cls)
            self.stats.published[t] = 0
            self.get_logger().info(f"{t} ({info.msgtype}): {qos.reliability.name.lower()}, depth {qos.depth}")
        for t, why in self.stats.skipped.items():
            self.get_logger().warning(f"not publishing {t}: {why}")
        self.clock_pub = None
        self._last_clock_ns = 0
        self.clock_period = 1.0 / clock_hz if clock and clock_hz > 0 else None
        if clock:
            from rosgraph_msgs.msg import Clock

            self._clock_cls = Clock
            self.clock_pub = self.create_publisher(Clock, "/clock", QoSProfile(depth=1))

    def wait_for_subscribers(self, count: int = 1, timeout_s: float = 10.0) -> bool:
        """Wait until every publisher (``/clock`` too with --clock) has ``count`` matched
        subscriptions (False on timeout)."""
        pubs = {t: p for t, (p, _) in self.pubs.items()}
        if self.clock_pub is not None:
            pubs["/clock"] = self.clock_pub
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(p.get_subscription_count() >= count for p in pubs.values()):
                return True
            time.sleep(0.05)
        missing = [t for t, p in pubs.items() if p.get_subscription_count() < count]
        self.get_logger().warning(f"no subscriber after {timeout_s:g} s on: {', '.join(missing)}")
        return False

    def wait_for_delivery(self, timeout_s: float = 2.0) -> None:
        """Let reliable subscribers acknowledge what was published (before the process ends)."""
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout_s
        for pub, _ in self.pubs.values():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9)))
            except Exception:  # best effort publishers, older rclpy
                time.sleep(min(left, 0.2))

    def _publish_clock(self, t_ns: int) -> None:
        if self.clock_pub is not None:
            t_ns = max(t_ns, self._last_clock_ns)  # /clock never goes backwards
            self._last_clock_ns = t_ns
            msg = self._clock_cls()
            msg.clock.sec, msg.clock.nanosec = t_ns // 1_000_000_000, t_ns % 1_000_000_000
            self.clock_pub.publish(msg)

    def _sleep_until(self, wall_target: float, bag_t0: int, wall_t0: float, target_ns: int) -> None:
        while True:
            now = time.monotonic()
            if now >= wall_target:
                return
            step = wall_target - now
            if self.clock_period:
                step = min(step, self.clock_period)
                time.sleep(step)
                now_ns = bag_t0 + round((time.monotonic() - wall_t0) * self.rate * 1e9)
                self._publish_clock(min(now_ns, target_ns))  # a late wake-up must not overtake the message
            else:
                time.sleep(step)

    def play_once(self, progress: Any = None) -> None:
        """Publish every message of the chosen topics once, at its bag time / rate."""
        wall_t0 = time.monotonic()
        bag_t0: int | None = None
        for m in self.reader.messages(list(self.pubs)):
            if not rclpy.ok(context=self.context):
                return
            if bag_t0 is None:
                bag_t0 = m.bag_time_ns
            wall_target = wall_t0 + (m.bag_time_ns - bag_t0) / 1e9 / self.rate
            self._sleep_until(wall_target, bag_t0, wall_t0, m.bag_time_ns)
            pub, cls = self.pubs[m.topic]
            try:
                ros_msg = to_ros(self.reader.deserialize(m), cls)
            except Exception as exc:
                self.stats.errors += 1
                self.get_logger().warning(f"{m.topic}: message at {m.bag_time_ns} not published: {exc}")
                continue
            self._publish_clock(m.bag_time_ns)
            pub.publish(ros_msg)
            self.stats.published[m.topic] += 1
            if progress is not None:
                progress.update(1)
        self.stats.loops += 1


def play(
    bag: str,
    topics: Sequence[str] | None = None,
    rate: float = 1.0,
    loop: bool = False,
    clock: bool = False,
    clock_hz: float = 40.0,
    reliable: bool | None = None,
    depth: int | None = None,
    wait_subscribers: int = 0,
    wait_timeout_s: float = 10.0,
    delay_s: float = 0.0,
    progress: bool = True,
    args: list[str] | None = None,
    teardown: bool = True,
) -> PlayStats:
    """Open ``bag`` and publish it (``loop``: until Ctrl-C). Returns what was published."""
    reader = BagReader(bag)
    for p in reader.problems:
        log.warning("%s", p)
    rclpy.init(args=args)
    node = None
    t0 = time.monotonic()
    try:
        node = BagPlayer(reader, topics, rate, clock, clock_hz, reliable, depth)
        if not node.pubs:
            raise ValueError(
                "nothing to publish: " + "; ".join(f"{t}: {w}" for t, w in node.stats.skipped.items())
            )
        if wait_subscribers > 0 and not node.wait_for_subscribers(wait_subscribers, wait_timeout_s):
            raise NoSubscribers(
                f"not every topic had {wait_subscribers} matched subscription(s) after {wait_timeout_s:g} s; "
                "nothing was published (check the subscriber's QoS, ROS_DOMAIN_ID and DDS transports)"
            )
        if delay_s > 0:
            time.sleep(delay_s)
        bar = None
        if progress:
            from tqdm import tqdm

            counts = [reader.topics[t].count for t in node.pubs]
            bar = tqdm(
                total=None if any(c is None for c in counts) else sum(counts), unit="msg", desc="bag-play"
            )
        try:
            while True:
                node.play_once(bar)
                if not loop or not rclpy.ok(context=node.context):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            if bar is not None:
                bar.close()
        node.wait_for_delivery(timeout_s=2.0)
        node.stats.wall_s = time.monotonic() - t0
        log.info("published %d messages in %.1f s", sum(node.stats.published.values()), node.stats.wall_s)
        return node.stats
    finally:
        if node is not None:
            if teardown:
                node.destroy_node()
                rclpy.try_shutdown()
            else:
                _LEFT_FOR_EXIT.append(node)  # no teardown, and no garbage collection doing it either
        reader.close()
