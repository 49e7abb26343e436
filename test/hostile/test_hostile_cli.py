"""Every CLI number has a range (refused by argparse, exit 2, one line, never clamped); a closed pipe
ends `hirqa score` quietly with status 141; a folder scan reports what it could not read."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from helpers_hostile import can_drop_permissions, run_hirqa, start_hirqa

from hirqa_ros.cli.main import main
from hirqa_ros.interrupts import CLOSED_PIPE_STATUS


@pytest.mark.parametrize("args,message", [
    (["bench", "--warmup", "-3"], "--warmup: -3 is outside [0, 1e+06]"),
    (["bench", "--iters", "0"], "--iters: 0 is outside [1, 1e+06]"),
    (["bench", "--sizes", "0x0"], "--sizes: 0x0: each side must be in [16, 16384]"),
    (["bench", "--sizes", "224x224,abc"], "expected HxW"),
    (["bench", "--batches", "0"], "--batches: 0 is outside [1, 1024]"),
    (["bench", "--batches", "1,-4"], "outside [1, 1024]"),
    (["bag-play", "BAG", "--clock", "0"], "--clock: 0 is outside (0, 1000]"),
    (["bag-play", "BAG", "--clock", "-5"], "--clock: -5 is outside (0, 1000]"),
    (["bag-play", "BAG", "--depth", "0"], "--depth: 0 is outside [1, 10000]"),
    (["bag-play", "BAG", "--depth", "-5"], "--depth: -5 is outside [1, 10000]"),
    (["bag-play", "BAG", "--rate", "0"], "--rate: 0 is outside (0, 1000]"),
    (["bag-play", "BAG", "--rate", "nan"], "finite"),
    (["bag-play", "BAG", "--wait-for-subscribers", "-1"], "outside [0, 1000]"),
    (["bag-play", "BAG", "--delay", "-1"], "outside [0, 86400]"),
    (["make-bag", "--images", "D", "--out", "O", "--rate", "0"], "--rate: 0 is outside (0, 1000]"),
    (["make-bag", "--images", "D", "--out", "O", "--size", "0x480"], "each side must be in [1, 16384]"),
    (["make-bag", "--images", "D", "--out", "O", "--jpeg-quality", "0"], "outside [1, 100]"),
    (["make-bag", "--images", "D", "--out", "O", "--duration", "-1"], "outside (0, 86400]"),
    (["make-bag", "--images", "D", "--out", "O", "--hold", "0"], "outside [1, 1e+06]"),
    (["export", "--refresh", "--max-batch", "0"], "outside [1, 1024]"),
    (["export", "--int8", "--calib-frames", "0"], "outside [1, 100000]"),
    (["export", "--engine", "e.plan", "--max-hw", "0x0"], "each side must be in [1, 16384]"),
    (["score", "P", "--batch-size", "0"], "outside [1, 1024]"),
    (["score", "P", "--every", "-1"], "outside [1, 1e+06]"),
    (["score", "P", "--threshold", "0.2,0.6"], "need 0 <= error"),
    (["eval", "--warn-frr", "1"], "--warn-frr: 1 is outside (0, 1)"),
    (["eval", "--batch-size", "0"], "outside [1, 1024]"),
    (["eval", "--crop", "-1"], "outside [0, 16384]"),
    (["train", "--max-steps", "0"], "outside [1, 1e+09]"),
    (["train", "--threads", "0"], "outside [1, 1024]"),
    (["demo", "--rate", "0"], "outside (0, 1000]"),
    (["prepare-data", "--val-fraction", "1.5"], "outside (0, 1)"),
])
def test_out_of_range_numbers_are_refused(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main([a.replace("BAG", str(tmp_path / "bag")) for a in args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # refused before any work


def test_cli_ranges_use_the_ros_parameters_bounds(capsys):
    """An option that sets what a node parameter sets refuses the same values, in the same words."""
    from hirqa_ros.node.params import BY_NAME

    lo, hi = BY_NAME["smoothing"].range
    with pytest.raises(SystemExit):
        main(["bag-eval", "B", "--out", "O", "--smoothing", str(hi + 0.001)])
    assert f"is outside [{lo:g}, {hi:g}]" in capsys.readouterr().err


@pytest.fixture
def folder(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        cv2.imwrite(str(imgs / f"{i:02d}.png"), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return imgs


@pytest.mark.parametrize("fmt", ["--jsonl", "--csv"])
def test_score_into_a_closed_pipe_ends_quietly_with_141(folder, random_model_dir, fmt):
    """`hirqa score --jsonl | head -1`: the reader leaves after one line; no BrokenPipeError traceback."""
    p = start_hirqa("score", "--model", random_model_dir, "--backend", "onnxruntime", "--batch-size", "1",
                    "--no-progress", fmt, folder)
    first = p.stdout.readline()
    p.stdout.close()  # what `head -1` does once it has its line
    _, err = p.communicate(timeout=300)
    assert first.strip() and p.returncode == CLOSED_PIPE_STATUS, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


@pytest.mark.skipif(not can_drop_permissions(), reason="running as root without setpriv")
def test_score_reports_an_unreadable_subfolder(folder, random_model_dir):
    locked = folder / "locked"
    locked.mkdir()
    cv2.imwrite(str(locked / "x.png"), np.zeros((48, 64, 3), np.uint8))
    os.chmod(locked, 0)
    try:
        p = run_hirqa("score", "--model", random_model_dir, "--backend", "onnxruntime", "--no-progress",
                      "--jsonl", folder, unprivileged=True)
    finally:
        os.chmod(locked, 0o755)
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    scored = [r for r in rows if r["score"] is not None]
    assert p.returncode == 1 and len(scored) == 30, p.stderr  # the rest is scored; the exit says a failure
    assert [(r["source"], r["reason"]) for r in rows if r["score"] is None] == [(str(locked), "decode_error")]
    assert f"error: {locked}: cannot read folder (Permission denied)" in p.stderr
    assert "1 failure(s)" in p.stderr and "Traceback" not in p.stderr
