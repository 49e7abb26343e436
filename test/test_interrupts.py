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
    but as soon as the block ends."""
    reached = []
    with pytest.raises(Terminated), terminate_like_interrupt():
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            reached.append("end of block")
        reached.append("after the block")
    assert reached == ["end of block"]
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, set())  # unblocked again
