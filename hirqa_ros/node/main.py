"""``hirqa_node`` console script: start the quality node (executor thread + inference thread).

Usage: ``hirqa_node --ros-args -r image:=/camera/image_raw -p backend:=onnxruntime``
(or ``ros2 run hirqa_ros hirqa_node --ros-args ...``). A lifecycle node: with ``autostart`` (the
default) it configures (loads the model) and activates (subscribes) by itself; with
``-p autostart:=false`` it waits for ``ros2 lifecycle set /hirqa_node configure`` / ``activate``.
Exits 0 on SIGINT/SIGTERM, 1 when the node cannot start (bad parameter, no model, backend
unavailable).
"""
from __future__ import annotations

import logging
import sys

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

    rclpy.init(args=argv)
    node = None
    code = 0
    try:
        try:
            node = QualityNode()
            if node.autostart:  # as a lifecycle manager would: configure (load the model), activate
                autostart(node)
        except Exception as exc:  # bad parameters, missing model, unusable backend: say why, exit 1
            reason = str(exc) if isinstance(exc, StartError) else f"{type(exc).__name__}: {exc}"
            rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {reason}")
            return 1
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
