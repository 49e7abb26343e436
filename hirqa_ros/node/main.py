"""``hirqa_node`` console script: start the quality node (executor thread + inference thread).

Usage: ``hirqa_node --ros-args -r image:=/camera/image_raw -p backend:=onnxruntime``
(or ``ros2 run hirqa_ros hirqa_node --ros-args ...``). A lifecycle node: with ``autostart`` (the
default) it configures (loads the model) and activates (subscribes) by itself; with
``-p autostart:=false`` it waits for ``ros2 lifecycle set /hirqa_node configure`` / ``activate``.
Exits 0 on SIGINT/SIGTERM, also while autostart is still loading the model (a TensorRT engine
build can take minutes: loading is abandoned), 1 when the node cannot start (bad parameter, no
model, backend unavailable).
"""
from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

HELP = __doc__


class StartError(RuntimeError):
    """A lifecycle transition of the autostart failed; the message says why."""


def autostart(node) -> None:
    """configure + activate ``node`` (autostart:=true); StartError with the reason if either fails."""
    from rclpy.lifecycle import TransitionCallbackReturn

    for transition in (node.trigger_configure, node.trigger_activate):
        if transition() != TransitionCallbackReturn.SUCCESS:
            raise StartError(node.transition_error or f"{transition.__name__} failed (see the log above)")


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown; the process exit code (as the console script, exits directly)."""
    argv = sys.argv if args is None else args
    if any(a in ("-h", "--help") for a in argv[1:]) and "--ros-args" not in argv:
        print(HELP)
        from hirqa_ros.node.params import PARAMS

        print("Parameters (-p name:=value):")
        for p in PARAMS:
            default = "from the model card" if p.default is None else repr(p.default)
            print(f"  {p.name} ({p.type}, {'dynamic' if p.dynamic else 'read-only'}, default {default}):"
                  f"\n      {p.description}")
        return 0
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s]: %(message)s")

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from hirqa_ros.node.quality_node import NODE_NAME, QualityNode

    try:
        rclpy.init(args=argv)
    except Exception as exc:  # rcl refuses the arguments, e.g. a missing or invalid --params-file
        text = str(exc).split(", at /")[0].strip()
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {text}")
        return 1
    node = None
    code = 0
    try:
        try:
            def start():  # in a worker thread: signals reach the main thread while the model loads
                built = QualityNode()
                if built.autostart:  # as a lifecycle manager would: configure (load the model), activate
                    autostart(built)
                return built

            node = build_interruptibly(start, rclpy.ok)
        except Interrupted as exc:
            rclpy.logging.get_logger(NODE_NAME).info(f"{exc} while starting: loading aborted, exiting")
            if args is None:
                _exit_now(0)  # the loading thread may sit in native code: do not wait for it
            return 0
        except Exception as exc:  # bad parameters, missing model, unusable backend: say why, exit 1
            reason = str(exc) if isinstance(exc, StartError) else f"{type(exc).__name__}: {exc}"
            rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {reason}")
            return 1
        for warning in params_file_warnings(argv, node.get_fully_qualified_name()):
            node.get_logger().warning(warning)
        # Inference has its own thread, so every executor callback is short (store a frame, publish
        # /diagnostics, answer a parameter service) and one executor thread keeps them all
        # responsive. Measured here, rclpy's MultiThreadedExecutor took in 5x fewer frames on
        # 2 busy cores (its per-callback overhead competes with inference for the GIL).
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception as exc:
            if rclpy.ok():  # a real error while running
                raise
            # SIGINT/SIGTERM shut rclpy down while the executor was taking a message (seen here:
            # "Unable to convert call argument '0'" from take_message): that is the requested stop
            logging.getLogger(NODE_NAME).debug(f"executor stopped by the shutdown: {type(exc).__name__}: "
                                               f"{exc}")
        finally:
            node.stop()
            executor.shutdown(timeout_sec=1.0)
    finally:
        if node is not None:
            node.stop()
            node.destroy_node()
            logging.getLogger(NODE_NAME).info("stopped cleanly")
        rclpy.try_shutdown()
    if args is None:
        _exit_now(code)
    return code


def params_file_warnings(argv: list[str], fqn: str) -> list[str]:
    """Warnings for ``--params-file`` files with no section that applies to the node ``fqn``
    (e.g. a misspelled node name: rcl ignores such sections without a word)."""
    import difflib

    from hirqa_ros.files import UntrustedFileError, load_untrusted

    files = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--params-file"]
    out = []
    for f in files:
        try:
            doc = load_untrusted(f, "--params-file")
        except UntrustedFileError:
            continue  # rcl already refused it at init
        if not isinstance(doc, dict):
            continue
        keys = [str(k) for k in doc]
        if not any(_section_applies(k, fqn) for k in keys):
            name = fqn.rsplit("/", 1)[-1]
            close = difflib.get_close_matches(name, [k.rsplit("/", 1)[-1] for k in keys], n=1)
            hint = "" if not close else " (another namespace?)" if close[0] == name else \
                f" ({close[0]!r}: a typo?)"
            out.append(f"--params-file {f}: no section applies to this node ({fqn}); its sections are "
                       f"{', '.join(keys)}{hint}; none of its parameters were applied")
    return out


def _section_applies(key: str, fqn: str) -> bool:
    """rcl's node-name match of a params-file section (``*`` one name, ``**`` any number)."""
    import re

    key = key if key.startswith("/") else "/" + key
    parts = []
    for token in re.split(r"(/\*\*|\*)", key):
        parts.append("(/[^/]+)*" if token == "/**" else "[^/]*" if token == "*" else re.escape(token))
    return re.fullmatch("".join(parts), fqn) is not None


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived while the node was starting."""


def build_interruptibly(factory: Callable[[], Any], ok: Callable[[], bool], poll_s: float = 0.1) -> Any:
    """``factory()`` in a worker thread while the main thread stays free to take signals.

    Python runs signal handlers only in the main thread between bytecodes, so a model load or a
    TensorRT build in the main thread would hold SIGINT/SIGTERM until it ends. Here rclpy's
    handlers act at once: SIGINT raises KeyboardInterrupt in this wait, SIGTERM shuts the
    context down (``ok()`` turns False); both raise :class:`Interrupted`. Otherwise returns what
    ``factory`` returned or raises what it raised.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = factory()
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="hirqa-node-start", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            if not ok():
                raise Interrupted("interrupted (SIGINT/SIGTERM)")
            worker.join(poll_s)
    except KeyboardInterrupt:
        raise Interrupted("interrupted (SIGINT)") from None
    if not ok():  # the signal came as the work ended
        raise Interrupted("interrupted (SIGINT/SIGTERM)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _exit_now(code: int) -> None:
    """Leave without interpreter finalisation once the node is cleanly down.

    Everything ROS is already destroyed; what is left is tearing down imported extension
    modules, which takes seconds once torch was imported (backend probing) and would make a
    SIGINT look like a hang to launch tools.
    """
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
