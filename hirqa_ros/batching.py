"""The one batching loop: items, in the order they come, in lists of at most N (the doors' frames, the
evaluation's protocol images, training's views)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def batched(items: Iterable[T], size: int | None) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (None or 0: one list of everything), the last one shorter;
    lazy: an item is taken from ``items`` only when its batch is being filled, so a stream is read (and
    its frames checked) in order, one batch ahead of the scoring at most."""
    if not size:
        whole = list(items)
        if whole:
            yield whole
        return
    size = max(1, int(size))
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
