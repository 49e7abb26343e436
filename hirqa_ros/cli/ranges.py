"""argparse types that refuse out-of-range numbers with a clear message (never clamp silently)."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any


def ranged(kind: type, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> Callable[[str], float | int]:
    """An argparse ``type=``: ``kind`` (int or float) within [lo, hi] (``*_open``: bound excluded)."""
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    span = f"{left}{'-inf' if lo is None else lo:g}, {'inf' if hi is None else hi:g}{right}"

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
        bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
        if bad_lo or bad_hi:
            raise argparse.ArgumentTypeError(f"{text} is outside {span}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def comma_list(one: Callable[[str], Any]) -> Callable[[str], list]:
    """An argparse ``type=``: a comma list, each item parsed (and range-checked) by ``one``."""

    def parse(text: str) -> list:
        values = [one(v.strip()) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma list, got {text!r}")
        return values

    parse.__name__ = f"{getattr(one, '__name__', 'value')} list"
    return parse


def frame_size(order: str = "HxW", lo: int = 1, hi: int = 16384) -> Callable[[str], tuple[int, int]]:
    """An argparse ``type=``: ``AxB`` (``order`` names the two, e.g. HxW or WxH), each side in [lo, hi]."""
    side = ranged(int, lo, hi)

    def parse(text: str) -> tuple[int, int]:
        parts = text.lower().split("x")
        if len(parts) != 2:
            raise argparse.ArgumentTypeError(f"expected {order}, e.g. 480x640, got {text!r}")
        try:
            a, b = side(parts[0].strip()), side(parts[1].strip())
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{text}: each side must be in [{lo}, {hi}] ({exc})") from None
        return a, b

    parse.__name__ = order
    return parse


def thresholds(text: str):
    """An argparse ``type=``: ``WARN[,ERROR]`` score thresholds (``decision.Thresholds``), finite,
    0 <= error <= warn <= 1; WARN alone keeps the default error (or WARN when lower)."""
    from hirqa_ros.decision import Thresholds

    unit = ranged(float, 0.0, 1.0)
    parts = [unit(x) for x in text.replace(",", " ").split()]
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected WARN or WARN,ERROR, got {text!r}")
    warn, error = parts[0], parts[1] if len(parts) == 2 else min(parts[0], Thresholds().error)
    try:
        return Thresholds(warn=warn, error=error)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
