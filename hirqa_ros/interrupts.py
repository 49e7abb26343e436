"""Ctrl-C, SIGTERM and closed pipes during long CLI work (ROS-free).

CPython can deliver the KeyboardInterrupt of a SIGINT inside a C-level call back into Python (for
example ``os.fspath`` called by numpy while reading a file) and then wraps it in a ``SystemError``
("returned a result with an exception set"). Both mean the user interrupted.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def is_interrupt(exc: BaseException | None) -> bool:
    """True when ``exc`` is a KeyboardInterrupt or was caused by one (``__cause__``/``__context__``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


#: exit status after the reader of stdout went away (``hirqa score --jsonl | head -1``): 128 + SIGPIPE,
#: what a shell reports for a tool that the default SIGPIPE ends (cat, grep); nothing is printed
CLOSED_PIPE_STATUS = 128 + 13


def closed_pipe() -> int:
    """Call on a ``BrokenPipeError`` of stdout: points stdout at /dev/null, so the interpreter's final
    flush does not fail a second time (the Python docs' recipe for SIGPIPE), and returns
    :data:`CLOSED_PIPE_STATUS`."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests): nothing to redirect
        pass
    finally:
        os.close(devnull)
    return CLOSED_PIPE_STATUS


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C (see :func:`terminate_like_interrupt`) so that the same cleanup runs."""


@contextmanager
def terminate_like_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (by default it ends the
    process on the spot, skipping the removal of staged partial outputs); the previous handler is
    put back after it, so a SIGTERM during the interpreter's shutdown cannot interrupt that."""
    import signal

    def handler(_signum, _frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_held(names: tuple[str, ...] = ("SIGINT", "SIGTERM")) -> Iterator[None]:
    """Within the block the signals ``names`` wait, and are delivered when it ends. For the few renames
    that commit a result (``files``, with SIGHUP too), and for importing native extensions such as torch:
    their init code calls back into Python, and the exception of a signal handler raised there cannot cross
    their C++ frames: the process aborts (``terminate called after throwing pybind11::error_already_set``,
    exit -6). The signals are blocked in this thread (and the threads it starts), and in the main thread
    the Python handlers only note them meanwhile: a signal sent to the process can be taken by another
    thread that does not block it (ONNX Runtime's, a reader's), and its handler would still run here. The
    mask is restored first, while the handlers still only note: nothing raised at the end can leave the
    signals blocked (and inherited by every child process)."""
    import signal
    import threading

    sigs = tuple(getattr(signal, name) for name in names)
    handlers = {s: signal.getsignal(s) for s in sigs}
    defer = threading.current_thread() is threading.main_thread() and None not in handlers.values()
    held = _Held(handlers)
    if defer:
        for s in sigs:
            signal.signal(s, held.note)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, set(sigs))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # one blocked meanwhile is noted now
        held.release()
        if defer:
            for s, handler in handlers.items():
                signal.signal(s, handler)
        for s in dict.fromkeys(held.pending):
            signal.raise_signal(s)


class _Held:
    """The stand-in handler of :func:`signals_held`: notes a signal while held; once released (a signal
    arriving while the real handlers are being put back) it puts its real handler back and raises it."""

    def __init__(self, handlers: dict) -> None:
        self.handlers, self.pending, self.released = handlers, [], False

    def note(self, signum: int, _frame) -> None:
        import signal

        if not self.released:
            self.pending.append(signum)
            return
        signal.signal(signum, self.handlers[signum])
        signal.raise_signal(signum)

    def release(self) -> None:
        self.released = True


def interrupt_status(exc: BaseException) -> int:
    """Exit status of a command stopped by ``exc``: 143 (128 + SIGTERM) for SIGTERM, 130 for Ctrl-C."""
    visited = set()
    while exc is not None and id(exc) not in visited:
        if isinstance(exc, Terminated):
            return 143
        visited.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return 130
