"""Read, deserialise and decode a bag's image messages in a background thread, so that this work
overlaps inference (numpy, OpenCV and the backends release the GIL); frames come out in bag order."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from typing import Any

import numpy as np

from hirqa_ros.bag.frames import FrameRow
from hirqa_ros.bag.reader import BagReader, RawMessage, stamp_ns
from hirqa_ros.imgmsg import msg_to_rgb
from hirqa_ros.monitor import refused
from hirqa_ros.refusals import DECODE_ERROR, decode_reason

_END = object()


def decoded_frames(
    reader: BagReader, topics: list[str], depth: int = 32
) -> Generator[tuple[FrameRow, np.ndarray | None], None, None]:
    """(row, HxWx3 uint8 RGB) per message of ``topics``; rgb None (and the row marked) when the
    message cannot be deserialised or decoded."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for m in reader.messages(topics):
                row = FrameRow(m.topic, m.bag_time_ns)
                t0 = time.perf_counter()
                rgb = _decode(reader, m, row)
                row.seconds += time.perf_counter() - t0
                if not put((row, rgb)):
                    return
        except BaseException as exc:  # a bug, not bad data (the reader reports damaged input itself)
            put(exc)
        finally:
            put(_END)

    worker = threading.Thread(target=produce, name="bag-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _decode(reader: BagReader, m: RawMessage, row: FrameRow) -> np.ndarray | None:
    try:
        msg = reader.deserialize(m)
    except Exception as exc:
        row.apply(refused(DECODE_ERROR, f"cannot deserialize {m.msgtype}: {exc}"))
        return None
    row.stamp_ns = stamp_ns(msg)
    header = getattr(msg, "header", None)
    row.frame_id = str(getattr(header, "frame_id", "") or "")
    try:
        return msg_to_rgb(msg)
    except Exception as exc:
        row.apply(refused(decode_reason(exc), f"cannot decode image: {exc}"))
        return None
