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
    """With another thread running that does not block the signals (ONNX Runtime's, a bag reader's), the
    kernel hands it a SIGTERM sent to the process; its Python handler would still run in this thread, inside
    the block. It waits for the end too, and the mask is restored (checked by conftest's guard)."""
    import socket
    import threading

    go, done = threading.Event(), threading.Event()
    other = threading.Thread(target=lambda: (go.set(), done.wait(10.0)), daemon=True)
    other.start()
    go.wait(10.0)
    wake_r, wake_w = socket.socketpair()
    wake_w.setblocking(False)
    previous_fd = signal.set_wakeup_fd(wake_w.fileno())
    reached = []
    try:
        with pytest.raises(Terminated), terminate_like_interrupt():
            with signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
                wake_r.settimeout(10.0)
                assert wake_r.recv(1) == bytes([signal.SIGTERM])  # the other thread took it: handler pending
                reached.append("end of block")
            reached.append("after the block")
    finally:
        signal.set_wakeup_fd(previous_fd)
        wake_r.close()
        wake_w.close()
        done.set()
        other.join(10.0)
    assert reached == ["end of block"]


def test_a_signal_while_the_handlers_are_put_back_still_unblocks(monkeypatch):
    """A SIGTERM whose real handler runs while the block's cleanup puts the handlers back (CI once had
    this under load: SIGINT and SIGTERM then stayed blocked, and every later child process ignored them).
    Simulated: putting back SIGTERM's handler raises, as that signal's arrival at that moment would."""
    real_signal = signal.signal

    def put_back(signum, handler):
        previous = real_signal(signum, handler)
        if signum == signal.SIGTERM and handler is not previous and getattr(previous, "__self__", None):
            raise Terminated()  # replacing signals_held's stand-in: the signal arrives right now
        return previous

    with pytest.raises(Terminated), terminate_like_interrupt():
        monkeypatch.setattr(signal, "signal", put_back)
        with signals_held():
            pass
    monkeypatch.undo()
    assert not {signal.SIGINT, signal.SIGTERM} & signal.pthread_sigmask(signal.SIG_BLOCK, set())


def test_the_commit_of_a_result_holds_sighup_too_and_delivers_it_after():
    """``files`` commits a result's renames inside ``signals_held(COMMIT_SIGNALS)``: a SIGHUP (a closed
    terminal) waits for the end of the renames, then reaches its handler."""
    from hirqa_ros.files import COMMIT_SIGNALS

    got = []
    previous = signal.signal(signal.SIGHUP, lambda signum, _frame: got.append(signum))
    try:
        with signals_held(COMMIT_SIGNALS):
            signal.raise_signal(signal.SIGHUP)
            assert got == []
        assert got == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, previous)
