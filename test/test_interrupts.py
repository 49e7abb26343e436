"""Ctrl-C is recognised however CPython delivers it (plain, or wrapped in a SystemError)."""
from __future__ import annotations

from hirqa_ros.interrupts import is_interrupt


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
