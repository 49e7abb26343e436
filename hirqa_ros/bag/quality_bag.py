"""A copy of a bag with one ``B_quality`` DiagnosticArray per scored frame (``hirqa bag-eval --write-bag``),
built from ``bag.quality`` so it reads like a recording of the node."""

from __future__ import annotations

from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from hirqa_ros.bag.frames import FrameRow
from hirqa_ros.bag.quality import DIAGNOSTIC_ARRAY, diagnostic_array, quality_status_fields, quality_topic
from hirqa_ros.bag.reader import BagReader
from hirqa_ros.decision import Level, Thresholds


def write_quality_bag(
    reader: BagReader,
    rows: list[FrameRow],
    out_path: Path,
    thresholds: Thresholds,
    backend: str,
    storage: str = "mcap",
) -> Path:
    """Copy every readable message of ``reader`` into a new rosbag2 at ``out_path`` and add one
    ``B_quality`` DiagnosticArray per scored frame, at the frame's bag time."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    if any(not s.is_cdr for s in reader.sources):
        raise ValueError("only ROS 2 (CDR) bags can be copied; convert ROS 1 bags with rosbags-convert first")
    if out_path.exists():
        raise FileExistsError(f"{out_path} exists; remove it or choose another --out")
    by_key: dict[tuple[str, int], deque[FrameRow]] = defaultdict(deque)
    for r in rows:
        if r.score is not None and r.stamp_ns is not None:
            by_key[(r.topic, r.bag_time_ns)].append(r)
    ts = reader.typestore
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    hdr_t = ts.types["std_msgs/msg/Header"]
    time_t = ts.types["builtin_interfaces/msg/Time"]
    with Writer(out_path, version=9, storage_plugin=plugin) as w:
        conns = {topic: add_copy_connection(w, info, reader) for topic, info in reader.topics.items()}
        qconns = {
            t: w.add_connection(quality_topic(t), DIAGNOSTIC_ARRAY, typestore=ts)
            for t in {r.topic for r in rows}
        }
        seq: dict[str, int] = defaultdict(int)
        for m in reader.messages():
            conn = conns.get(m.topic)
            if conn is not None and m.msgtype == reader.topics[m.topic].msgtype:
                w.write(conn, m.bag_time_ns, m.raw)
            waiting = by_key.get((m.topic, m.bag_time_ns))
            if waiting:
                r = waiting.popleft()
                header = hdr_t(
                    stamp=time_t(sec=r.stamp_ns // 1_000_000_000, nanosec=r.stamp_ns % 1_000_000_000),
                    frame_id=r.frame_id,
                )
                seq[r.topic] += 1
                status = quality_status_fields(
                    r.topic, r.score, Level[r.level], r.smoothed, thresholds, backend,
                    frame_id=r.frame_id, sequence=seq[r.topic], batch_size=r.batch_size, reason=r.reason,
                    fault=r.fault, fault_confidence=r.fault_confidence, fault_top3=r.fault_top3,
                    reference=r.reference,
                )
                msg = diagnostic_array(ts, header, status)
                w.write(qconns[r.topic], m.bag_time_ns, ts.serialize_cdr(msg, DIAGNOSTIC_ARRAY))
    return out_path


def add_copy_connection(w: Any, info: Any, reader: BagReader) -> Any:
    """A connection of writer ``w`` copying topic ``info`` unchanged (None, reported, without definition)."""
    kw = {"offered_qos_profiles": info.qos}
    if info.msgdef and info.digest:
        return w.add_connection(info.topic, info.msgtype, msgdef=info.msgdef, rihs01=info.digest, **kw)
    for src in reader.sources:
        if info.msgtype in src.typestore.fielddefs:
            return w.add_connection(info.topic, info.msgtype, typestore=src.typestore, **kw)
    reader.problems.append(f"bag copy: no definition for {info.msgtype}; topic {info.topic} not copied")
    return None
