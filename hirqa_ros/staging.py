"""Reusable host buffers for uint8 NHWC batches, one small pool per shape (pinned ones for CUDA).

Reusing buffers keeps the per-call host work at one pixel copy: no allocation and no first-touch
page faults per frame, and for CUDA backends no fresh ``pin_memory`` per call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

Shape = tuple[int, ...]


def numpy_alloc(shape: Shape) -> np.ndarray:
    return np.empty(shape, np.uint8)


class StagingPool:
    """Hands out C-contiguous uint8 buffers by shape; :meth:`release` returns them for reuse.

    Thread-safe; a buffer is never handed to two callers at once. Keeps at most ``max_shapes``
    shapes (least recently used dropped) and ``per_shape`` free buffers of each.
    """

    def __init__(self, alloc: Callable[[Shape], np.ndarray] = numpy_alloc, max_shapes: int = 8,
                 per_shape: int = 2) -> None:
        self.alloc = alloc
        self.max_shapes = max_shapes
        self.per_shape = per_shape
        self._free: OrderedDict[Shape, list[np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self.allocations = 0  # how many buffers were ever allocated (tests and logs read it)

    def acquire(self, shape: Shape) -> np.ndarray:
        shape = tuple(int(s) for s in shape)
        with self._lock:
            free = self._free.get(shape)
            if free:
                self._free.move_to_end(shape)
                return free.pop()
            self.allocations += 1
        return self.alloc(shape)

    def release(self, buf: np.ndarray) -> None:
        with self._lock:
            free = self._free.setdefault(tuple(buf.shape), [])
            self._free.move_to_end(tuple(buf.shape))
            if len(free) < self.per_shape:
                free.append(buf)
            while len(self._free) > self.max_shapes:
                self._free.popitem(last=False)
