"""A copy of a bag holding only the accepted frames on the evaluated camera topics (``hirqa bag-eval
--write-accepted``): every other message is copied unchanged, for clean training data."""

from __future__ import annotations

from collections import defaultdict, deque
from pathlib import Path

from hirqa_ros.bag.frames import FrameRow
from hirqa_ros.bag.quality_bag import add_copy_connection
from hirqa_ros.bag.reader import BagReader


def write_accepted_bag(reader: BagReader, rows: list[FrameRow], out_path: Path,
                       storage: str = "mcap") -> dict:
    """Copy ``reader``'s messages into a new rosbag2 at ``out_path``, leaving out every camera frame
    of ``rows`` whose verdict is not ``keep`` (dropped or not scorable). Returns counts per topic."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    if any(not s.is_cdr for s in reader.sources):
        raise ValueError("only ROS 2 (CDR) bags can be copied; convert ROS 1 bags with rosbags-convert first")
    if out_path.exists():
        raise FileExistsError(f"{out_path} exists")
    verdicts: dict[tuple[str, int], deque[str]] = defaultdict(deque)
    for r in rows:
        verdicts[(r.topic, r.bag_time_ns)].append(r.verdict)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"kept": 0, "left_out": 0})
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(out_path, version=9, storage_plugin=plugin) as w:
        conns = {topic: add_copy_connection(w, info, reader) for topic, info in reader.topics.items()}
        for m in reader.messages():
            waiting = verdicts.get((m.topic, m.bag_time_ns))
            if waiting and waiting.popleft() != "keep":
                counts[m.topic]["left_out"] += 1
                continue
            conn = conns.get(m.topic)
            if conn is not None and m.msgtype == reader.topics[m.topic].msgtype:
                w.write(conn, m.bag_time_ns, m.raw)
                counts[m.topic]["kept"] += 1
    return {t: dict(c) for t, c in counts.items()}


def write_accepted_into(bag: str | Path, rows: list[FrameRow], out_dir: Path, name: str) -> Path:
    """``out_dir/<name>_accepted`` from ``bag``, written beside it under a temporary name and renamed
    into place when complete (an older copy is replaced only then)."""
    import os
    import shutil
    import tempfile

    final = out_dir / f"{name}_accepted"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}_accepted-", dir=out_dir))
    try:
        with BagReader(bag) as reader:
            write_accepted_bag(reader, rows, tmp / "bag")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / "bag", final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
