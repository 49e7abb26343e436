"""hirqa score and hirqa bag-eval on hostile input: frames with no content and frozen streams are
ERROR with a reason, oversized frames are tiled within bounded memory, labels that match nothing and
output folders that cannot take the results are refused before any work, partial results say so."""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_bag import frames, write_image_bag

from hirqa_ros.cli.main import main

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(7)


def _hirqa(args, preexec_fn=None):  # SIGINT: the default in every child (conftest.py)
    return subprocess.Popen([sys.executable, "-m", "hirqa_ros.cli.main", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=preexec_fn)


def _no_content_frames(h=120, w=160):
    return {
        "black.png": np.clip(RNG.normal(5, 3, (h, w, 3)), 0, 255).astype(np.uint8),  # lens cap + sensor noise
        "white.png": np.full((h, w, 3), 255, np.uint8),
        "grey.png": np.clip(RNG.normal(128, 6, (h, w, 3)), 0, 255).astype(np.uint8),
    }


def _bag_of(path: Path, rgbs: list[np.ndarray]) -> Path:
    return write_image_bag(path, rgbs)


# ---- no content and frozen -------------------------------------------------------------------------
def test_score_black_white_grey_frames_are_error_with_a_reason(tmp_path, random_model_dir, capsys):
    for name, rgb in _no_content_frames().items():
        cv2.imwrite(str(tmp_path / name), rgb[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "scene.png"), frames(1, 160, 120)[0][:, :, ::-1])
    assert main(["score", "--model", str(random_model_dir), "--jsonl", "--no-progress", str(tmp_path)]) == 0
    rows = {Path(r["source"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["black.png"]["level"] == "ERROR" and rows["black.png"]["reason"] == "no_content: black"
    assert rows["white.png"]["level"] == "ERROR" and rows["white.png"]["reason"] == "no_content: white"
    assert rows["grey.png"]["level"] == "ERROR" and rows["grey.png"]["reason"] == "no_content: uniform"
    assert "reason" not in rows["scene.png"]
    # the levels are options; -1 turns the black check off
    assert main(["score", "--model", str(random_model_dir), "--jsonl", "--no-content-black-level", "-1",
                 str(tmp_path / "black.png")]) == 0
    assert json.loads(capsys.readouterr().out).get("reason") != "no_content: black"


def test_score_frozen_video_is_error_after_frozen_timeout(tmp_path, random_model_dir, capsys):
    scene = frames(2, 160, 120)
    w = cv2.VideoWriter(str(tmp_path / "stuck.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(40):  # 1 s live, then 3 s of one repeated buffer at 10 fps
        noise = RNG.integers(-3, 4, scene[0].shape)
        live = np.clip(scene[0].astype(np.int16) + noise, 0, 255).astype(np.uint8)
        w.write((live if i < 10 else scene[1])[:, :, ::-1])
    w.release()
    assert main(["score", "--model", str(random_model_dir), "--jsonl", "--no-progress", "--every", "5",
                 "--frozen-timeout-s", "1.5", str(tmp_path / "stuck.avi")]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    frozen = [r["frame"] for r in rows if r.get("reason") == "frozen"]
    assert frozen == [25, 30, 35]  # frames 10.. identical; >= 1.5 s later from frame 25 on
    assert all(r["level"] == "ERROR" for r in rows if r["frame"] in frozen)


def test_bag_eval_black_white_grey_and_frozen_stream_are_error(tmp_path, random_model_dir, capsys):
    scene = frames(1, 160, 120)[0]
    nc = _no_content_frames()
    live = [np.clip(scene.astype(np.int16) + RNG.integers(-3, 4, scene.shape), 0, 255).astype(np.uint8)
            for _ in range(5)]
    rgbs = live + [nc["black.png"], nc["white.png"], nc["grey.png"]] + [scene] * 12  # then 1.2 s frozen
    bag = _bag_of(tmp_path / "bag", rgbs)
    out = tmp_path / "out"
    code = main(["bag-eval", str(bag), "--out", str(out), "--model", str(random_model_dir), "--backend",
                 "onnxruntime", "--no-progress", "--no-plots", "--frozen-timeout-s", "0.5"])
    assert code == 0
    from hirqa_ros.bag.frames import read_frames_csv

    rows = read_frames_csv(out / "frames.csv")
    s = json.loads((out / "summary.json").read_text())
    levels = [r["level"] for r in rows]
    assert levels[5:8] == ["ERROR"] * 3 and all(r["verdict"] == "drop" for r in rows[5:8])
    assert [r["reason"] for r in rows[4:9]] == ["", "no_content: black", "no_content: white",
                                                "no_content: uniform", ""]
    reasons = s["overall"]["reasons"]
    assert reasons["no_content: black"] == reasons["no_content: white"] == reasons["no_content: uniform"] == 1
    assert reasons["frozen"] == 7  # frames 8..19 identical; 0.5 s = 5 frames after the first
    assert s["complete"] is True and "frames by reason" in capsys.readouterr().out


# ---- bounded memory -------------------------------------------------------------------------------
@pytest.mark.slow
def test_8000x8000_image_is_tiled_with_peak_rss_under_3_gb(tmp_path, random_model_dir):
    """One 8000x8000 PNG (the issue's 10.2 GB case): scored as native tiles; peak RSS of the process."""
    y, x = np.ogrid[0:8000, 0:8000]
    img = np.empty((8000, 8000, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = (x // 31) % 256, (y // 29) % 256, ((x + y) // 53) % 256
    path = tmp_path / "huge.png"
    cv2.imwrite(str(path), img)
    del img
    # measured through a small wrapper process: a child (v)forked straight from this large pytest
    # process has the parent's pages in its ru_maxrss (Linux keeps the pre-exec high-water mark)
    wrapper = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); "
               "_, st, ru = os.wait4(p.pid, 0); print(ru.ru_maxrss, file=sys.stderr); "
               "sys.exit(os.waitstatus_to_exitcode(st))")
    cmd = [sys.executable, "-m", "hirqa_ros.cli.main", "score", "--model", str(random_model_dir), "--backend",
           "onnxruntime", "--jsonl", "--no-progress", str(path)]
    p = subprocess.run([sys.executable, "-c", wrapper, *cmd], cwd=REPO, capture_output=True, text=True,
                       timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert p.returncode == 0, p.stderr
    row = json.loads(p.stdout)
    assert row["tiles"] == 8 and 0 < row["score"] < 1
    peak_gb = int(p.stderr.strip().splitlines()[-1]) / 2**20  # kB -> GB
    print(f"\n8000x8000 PNG ({path.stat().st_size / 1e3:.0f} kB): peak RSS {peak_gb:.2f} GB, 8 tiles")
    assert peak_gb < 3.0, f"peak RSS {peak_gb:.2f} GB"


# ---- bag-eval: labels and output folders checked before any work ------------------------------------
@pytest.mark.parametrize("labels,message", [
    ("segmets:\n  - {start: 0, end: 1, label: haze}\n", "did you mean 'segments'"),
    ("", "empty"),
    ("origin_ns: 0\nsegments:\n  - {topic: /cam/typo, start_ns: 0, end_ns: 10, label: haze}\n",
     "no segment applies to the evaluated topics"),
])
def test_bag_eval_bad_labels_exit_2_before_scoring(tmp_path, random_model_dir, caplog, labels, message):
    bag = _bag_of(tmp_path / "bag", frames(3, 64, 48))
    (tmp_path / "l.yaml").write_text(labels)
    out = tmp_path / "out"
    assert main(["bag-eval", str(bag), "--out", str(out), "--labels", str(tmp_path / "l.yaml"), "--model",
                 str(random_model_dir), "--no-progress"]) == 2
    assert message in caplog.text
    assert not (out / "frames.csv").exists()


def test_bag_eval_labels_outside_the_bag_time_range_exit_2(tmp_path, random_model_dir, caplog):
    bag = _bag_of(tmp_path / "bag", frames(3, 64, 48))
    (tmp_path / "l.yaml").write_text("origin_ns: 0\nsegments:\n  - {start: 1, end: 2, label: haze}\n")
    out = tmp_path / "out"
    assert main(["bag-eval", str(bag), "--out", str(out), "--labels", str(tmp_path / "l.yaml"), "--model",
                 str(random_model_dir), "--no-progress", "--no-plots"]) == 2
    assert "no segment contains any frame" in caplog.text
    s = json.loads((out / "summary.json").read_text())  # the scores are kept
    assert any(p.startswith("labels:") for p in s["problems"]) and s["overall"]["scored"] == 3


@pytest.mark.parametrize("case", ["existing file", "under a file"])
def test_bag_eval_unusable_out_is_one_line_exit_2(tmp_path, random_model_dir, capsys, caplog, case):
    bag = _bag_of(tmp_path / "bag", frames(2, 64, 48))
    f = tmp_path / "results"
    f.write_text("keep me")
    out = f if case == "existing file" else f / "sub"
    args = ["bag-eval", str(bag), "--out", str(out), "--model", str(random_model_dir), "--no-progress"]
    assert main(args) == 2
    assert "Traceback" not in capsys.readouterr().err and "--out" in caplog.text
    assert f.read_text() == "keep me"


def test_bag_eval_write_failure_leaves_no_half_written_outputs(tmp_path, random_model_dir):
    """A full disk, made real with RLIMIT_FSIZE (writes past 64 kB fail with EFBIG, as ENOSPC would)."""
    bag = _bag_of(tmp_path / "bag", frames(30, 160, 120))
    out = tmp_path / "out"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    p = _hirqa(["bag-eval", str(bag), "--out", str(out), "--model", str(random_model_dir), "--backend",
                "onnxruntime", "--no-progress", "--write-bag"], preexec_fn=limit)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 2, stdout + stderr
    assert "cannot write the results" in stderr and "Traceback" not in stderr
    left = sorted(x.name for x in out.iterdir())
    assert left == [], f"half-written outputs left behind: {left}"


def test_bag_eval_interrupted_exits_130_with_partial_results_labelled(tmp_path, random_model_dir):
    bag = _bag_of(tmp_path / "bag", frames(4, 320, 240) * 60)
    out = tmp_path / "out"
    p = _hirqa(["bag-eval", str(bag), "--out", str(out), "--model", str(random_model_dir), "--backend",
                "onnxruntime", "--no-plots", "--batch", "1", "--no-progress"])
    deadline = time.monotonic() + 120
    seen = ""
    while "scoring /cam/image_raw" not in seen and time.monotonic() < deadline and p.poll() is None:
        seen += p.stderr.readline()
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stdout + seen + stderr
    assert "PARTIAL" in seen + stderr and "Traceback" not in seen + stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["interrupted"] is True and s["complete"] is False
    assert 0 < s["overall"]["scored"] < 240


def test_score_interrupted_exits_130_with_partial_results_labelled(tmp_path, random_model_dir):
    for i, rgb in enumerate(frames(4, 320, 240) * 50):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), rgb)
    p = _hirqa(["score", "--model", str(random_model_dir), "--backend", "onnxruntime", "--batch-size", "1",
                "--jsonl", "--no-progress", str(tmp_path)])
    first = p.stdout.readline()  # one frame scored
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    assert json.loads(first)["score"] > 0 and "interrupted: partial results" in stderr
    assert "Traceback" not in stderr and len((first + stdout).splitlines()) < 200


def test_score_fifo_in_a_folder_is_skipped_and_the_rest_kept(tmp_path, random_model_dir, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), frames(1, 64, 48)[0])
    os.mkfifo(tmp_path / "b.jpg")
    assert main(["score", "--model", str(random_model_dir), "--no-progress", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "a.png" in captured.out and "FIFO" in captured.err
