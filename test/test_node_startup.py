"""hirqa_node start-up: signals while the model loads (exit 0, loading aborted) and --params-file problems."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")
pytest.importorskip("torch", reason="torch not installed (the torch backend gives a loading phase)")

from helpers_node import NodeProcess, domain_id, ros_env

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


@pytest.mark.parametrize("content,message", [
    (None, "Error opening YAML file"),
    ("bad: [yaml\n", "Couldn't parse params file"),
], ids=["missing", "invalid"])
def test_missing_or_invalid_params_file_is_one_line_exit_1(random_model_dir, tmp_path, content, message):
    path = tmp_path / "params.yaml"
    if content is not None:
        path.write_text(content)
    cmd = [sys.executable, "-m", "hirqa_ros.node.main", "--ros-args", "--params-file", str(path)]
    out = subprocess.run(cmd, env=ros_env(domain_id(6)), capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert "Traceback" not in text and message in text and "cannot start" in text


def test_params_file_with_misspelled_node_key_is_reported(random_model_dir, tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("hirqa_nod:\n  ros__parameters:\n    smoothing: 0.5\n")
    params = {"image_topics": ["/pf/image"], "model_path": str(random_model_dir), "backend": "onnxruntime"}
    node = NodeProcess(params, domain_id(6), tmp_path / "node.log", params_files=[path])
    try:
        node.wait_ready()
        deadline = time.monotonic() + 10
        while "no section applies" not in node.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = node.log()
        assert "no section applies to this node (/hirqa_node)" in log, log
        assert "'hirqa_nod': a typo?" in log
    finally:
        node.stop()
