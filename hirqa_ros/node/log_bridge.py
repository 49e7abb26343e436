"""Route the package's Python ``logging`` records (hirqa_ros.*: backends, scorer, monitor) to the node's
rclpy logger, so they reach /rosout and the console like the node's own lines and follow --log-level."""
from __future__ import annotations

import logging
from typing import Any

PACKAGE_LOGGER = "hirqa_ros"

# rcutils severities (rclpy.logging.LoggingSeverity values) -> Python levels
_PY_LEVEL = {10: logging.DEBUG, 20: logging.INFO, 30: logging.WARNING, 40: logging.ERROR,
             50: logging.CRITICAL}


class RosLogHandler(logging.Handler):
    """A logging handler that writes each record through an rclpy logger, with its module name."""

    def __init__(self, ros_logger: Any) -> None:
        super().__init__(logging.DEBUG)
        self.ros = ros_logger
        self._warning = getattr(ros_logger, "warning", None) or ros_logger.warn  # Humble-era: .warn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"[{record.name}] {record.getMessage()}"
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            if record.levelno >= logging.CRITICAL:
                self.ros.fatal(text)
            elif record.levelno >= logging.ERROR:
                self.ros.error(text)
            elif record.levelno >= logging.WARNING:
                self._warning(text)
            elif record.levelno >= logging.INFO:
                self.ros.info(text)
            else:
                self.ros.debug(text)
        except Exception:
            self.handleError(record)


def route_package_logs(ros_logger: Any, package: str = PACKAGE_LOGGER) -> RosLogHandler:
    """Send ``package``'s records to ``ros_logger`` only (not also to the root logger's stderr handler);
    Python filters at the rclpy logger's effective level, so disabled levels cost nothing."""
    handler = RosLogHandler(ros_logger)
    log = logging.getLogger(package)
    for old in [h for h in log.handlers if isinstance(h, RosLogHandler)]:
        log.removeHandler(old)  # the newest node owns the package's messages
    log.addHandler(handler)
    log.propagate = False
    try:
        severity = int(ros_logger.get_effective_level())
    except Exception:
        severity = 20
    log.setLevel(_PY_LEVEL.get(severity, logging.INFO))
    return handler


def unroute_package_logs(handler: RosLogHandler, package: str = PACKAGE_LOGGER) -> None:
    """Undo :func:`route_package_logs` (node destroyed): records go to Python logging again."""
    log = logging.getLogger(package)
    if handler in log.handlers:
        log.removeHandler(handler)
    if not any(isinstance(h, RosLogHandler) for h in log.handlers):
        log.propagate = True
        log.setLevel(logging.NOTSET)
