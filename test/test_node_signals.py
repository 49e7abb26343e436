"""SIGINT/SIGTERM while hirqa_node is still loading its model: loading is aborted, exit 0, no traceback."""
from __future__ import annotations

import signal
import time

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")
pytest.importorskip("torch", reason="torch not installed (the torch backend gives a loading phase)")

from helpers_node import NodeProcess, domain_id

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_model_loading_exits_0(random_model_dir, tmp_path, sig):
    # the torch backend imports torch and builds the network while loading: seconds, as a
    # (much longer) TensorRT engine build would be
    params = {"image_topics": ["/load/image"], "model_path": str(random_model_dir), "backend": "torch"}
    node = NodeProcess(params,
                       domain_id(5), tmp_path / "node.log")
    try:
        deadline = time.monotonic() + 60
        while "loading model" not in node.log() and time.monotonic() < deadline:
            assert node.proc.poll() is None, node.log()
            time.sleep(0.02)
        assert "loading model" in node.log(), node.log()
        node.proc.send_signal(sig)
        code = node.proc.wait(30)
        log = node.log()
        assert code == 0, f"exit code {code}\n{log}"
        assert "Traceback" not in log and "FATAL" not in log and "KeyboardInterrupt" not in log, log
        assert "loading aborted" in log or "stopped cleanly" in log, log  # the signal beat or followed READY
        assert "READY" not in log or "stopped cleanly" in log
    finally:
        node.stop()
