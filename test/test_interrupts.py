"""Ctrl-C is recognised however CPython delivers it (plain, or wrapped in a SystemError)."""
from __future__ import annotations

import os
import signal

import pytest

from hirqa_ros.interrupts import Terminated, is_interrupt, signals_held, terminate_like_interrupt


def _raise_wrapped() -> BaseException:
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise SystemError("<function PurePath.__str__> returned a result with an exception set") from ki
    except SystemError as exc:
        return exc


def test_plain_and_wrapped_keyboard_interrupts_count():
    assert is_interrupt(KeyboardInterrupt())
    assert is_interrupt(_raise_wrapped())


def test_other_errors_do_not():
    assert not is_interrupt(SystemError("a real bug"))
    assert not is_interrupt(ValueError("bad frame"))
    assert not is_interrupt(None)
    loop = ValueError("loop")
    loop.__context__ = loop
    assert not is_interrupt(loop)


def test_a_signal_during_signals_held_waits_for_the_end_of_the_block():
    """SIGTERM sent inside the block is not raised there (where native init code could not pass it on)
    but as soon as the block ends. Sent to this thread (a signal sent to the process may be taken by a
    leftover thread of the suite, late under load: the next test covers that case)."""
    import threading

    reached = []
    with pytest.raises(Terminated), terminate_like_interrupt():
        with signals_held():
            signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
            reached.append("end of block")
        reached.append("after the block")
    assert reached == ["end of block"]
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # unblocked again


def test_a_signal_taken_by_another_thread_during_signals_held_still_waits():
    """With another thread running that does not block the signals (ONNX Runtime's, a bag reader's: the
    suite's own leftovers made the test above flaky), the kernel hands it a SIGTERM sent to the process;
    its Python handler would still run in this thread, inside the block. It waits for the end too."""
    import threading

    go, done = threading.Event(), threading.Event()
    other = threading.Thread(target=lambda: (go.set(), done.wait(5.0)), daemon=True)
    other.start()
    go.wait(5.0)
    reached = []
    try:
        with pytest.raises(Terminated), terminate_like_interrupt():
            with signals_held():
                for _ in range(20):  # whichever thread the kernel picks, some bytecode runs in this one
                    os.kill(os.getpid(), signal.SIGTERM)
                reached.append("end of block")
            reached.append("after the block")
    finally:
        done.set()
        other.join(5.0)
    assert reached == ["end of block"]
