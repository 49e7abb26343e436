"""Refuse invalid lifecycle transitions cleanly on every distro: the node's ``change_state`` service
answers ``success=false`` for a transition the current state does not offer, and the node keeps running.

Humble/Jazzy rclpy raise ``RCLError`` out of the service callback in that case (e.g. Nav2's
lifecycle_manager sending ``configure`` to a node that autostarted), which ends the executor; Kilted
returns ``success=false`` itself. The guard wraps the service's callback (a public attribute of
``rclpy.service.Service``), so it works the same on all of them.
"""
from __future__ import annotations

from typing import Any

from lifecycle_msgs.srv import ChangeState


def guard_change_state(node: Any, log: Any) -> bool:
    """Wrap ``node``'s change_state service callback; False when the node has no such service."""
    for srv in node.services:
        if srv.srv_type is ChangeState:
            original = srv.callback
            srv.callback = lambda req, resp, cb=original: _guarded(node, cb, log, req, resp)
            return True
    return False


def _offered(node: Any) -> tuple[list[tuple[int, str]], str] | None:
    """(id, label) of the transitions the current state offers and that state's label; None if rclpy
    does not expose them (then the guard relies on catching the error)."""
    try:
        machine = node._state_machine  # rclpy's own state machine (no public accessor on Humble)
        offered = [(int(t[0]), str(t[1])) for t in machine.available_transitions]
        return offered, str(machine.current_state[1])
    except Exception:
        return None


def _guarded(node: Any, original: Any, log: Any, req: Any, resp: Any) -> Any:
    wanted = req.transition.label or str(req.transition.id)
    known = _offered(node)
    if known is not None:
        offered, state = known
        ok = any((label == req.transition.label) if req.transition.label else (tid == req.transition.id)
                 for tid, label in offered)
        if not ok:
            choices = ", ".join(f"{label} ({tid})" for tid, label in offered)
            _warn(log, f"lifecycle: transition {wanted} refused in state {state} (offered: {choices}); "
                       "the node keeps running")
            resp.success = False
            return resp
    try:
        return original(req, resp)
    except Exception as exc:  # RCLError on Humble/Jazzy for an invalid transition
        _warn(log, f"lifecycle: transition {wanted} refused: {type(exc).__name__}: {exc}")
        resp.success = False
        return resp


def _warn(log: Any, text: str) -> None:
    (getattr(log, "warning", None) or log.warn)(text)
