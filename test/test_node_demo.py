"""``hirqa demo`` end to end: node subprocess + sample camera, live lines, summary, exit 0."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (pip install -e \".[ros]\")")

from helpers_node import domain_id, ros_env

pytestmark = pytest.mark.ros


@pytest.mark.slow
def test_demo_runs_with_the_random_model(random_model_dir):
    domain = domain_id(31)
    cmd = [sys.executable, "-m", "hirqa_ros.cli.main", "demo", "--model", str(random_model_dir),
           "--backend", "onnxruntime", "--duration", "7", "--rate", "2", "--size", "64x48",
           "--domain-id", str(domain)]
    out = subprocess.run(cmd, env=ros_env(domain), capture_output=True, text=True, timeout=240)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "READY" in text
    lines = [ln for ln in out.stdout.splitlines() if " frame " in ln and " score " in ln]
    assert len(lines) >= 5, text
    assert {c for c in ("clear", "haze", "blurred", "dark", "glare") if any(f" {c} " in ln for ln in lines)} \
        >= {"clear", "haze"}
    summary = out.stdout.split("summary", 1)[1]
    for cond in ("clear", "haze", "blurred", "dark", "glare"):
        assert cond in summary


def test_demo_rejects_bad_size():
    out = subprocess.run([sys.executable, "-m", "hirqa_ros.cli.main", "demo", "--size", "10x10"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--size" in out.stderr
