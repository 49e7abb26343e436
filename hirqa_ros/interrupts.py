"""Ctrl-C during long CLI work (ROS-free).

CPython can deliver the KeyboardInterrupt of a SIGINT inside a C-level call back into Python (for
example ``os.fspath`` called by numpy while reading a file) and then wraps it in a ``SystemError``
("returned a result with an exception set"). Both mean the user interrupted.
"""
from __future__ import annotations


def is_interrupt(exc: BaseException | None) -> bool:
    """True when ``exc`` is a KeyboardInterrupt or was caused by one (``__cause__``/``__context__``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
