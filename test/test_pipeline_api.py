"""The public pipeline API (``hirqa_ros.open_monitor`` -> ``Monitor.score_frames``), the one batching loop
and the one refusal vocabulary. Seeded RANDOM weights (plumbing: the scores only have to agree)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers_node import scene

from hirqa_ros.batching import batched
from hirqa_ros.refusals import DECODE_ERROR, TOO_LARGE, TOO_SMALL, decode_reason


def test_import_hirqa_ros_exports_the_pipeline_and_stays_light():
    code = ("import sys, hirqa_ros; assert callable(hirqa_ros.open_monitor) and hirqa_ros.Monitor "
            "and hirqa_ros.FrameResult and hirqa_ros.Scorer; "
            "assert 'torch' not in sys.modules and 'rclpy' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_batched_is_lazy_and_keeps_order():
    taken = []

    def items():
        for i in range(7):
            taken.append(i)
            yield i

    it = batched(items(), 3)
    assert next(it) == [0, 1, 2] and taken == [0, 1, 2]  # nothing read ahead of the batch
    assert list(it) == [[3, 4, 5], [6]]
    assert list(batched([1, 2], None)) == [[1, 2]]
    assert list(batched([], 4)) == [] and list(batched([], None)) == []


def test_refusal_reasons_of_decoding_errors(tmp_path):
    from hirqa_ros import media
    from hirqa_ros.imgmsg import ImageDecodeError, ImageTooLarge
    from hirqa_ros.limits import TooLarge

    assert decode_reason(ImageTooLarge("x")) == TOO_LARGE == decode_reason(TooLarge("x"))
    assert decode_reason(ImageDecodeError("x")) == DECODE_ERROR == decode_reason(ValueError("x"))
    import struct
    import zlib

    chunk = b"IHDR" + struct.pack(">IIBBBBB", 20_000, 20_000, 8, 2, 0, 0, 0)
    (tmp_path / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
                                        + struct.pack(">I", zlib.crc32(chunk)))
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    errs = {p.name: e for p in sorted(tmp_path.iterdir()) for e in media.iter_file(p)}
    assert (errs["huge.png"].reason, errs["junk.png"].reason) == (TOO_LARGE, DECODE_ERROR)
    assert "decoding limit" in errs["huge.png"].message


def test_monitor_score_frames_is_the_doors_pipeline(random_model_dir, tmp_path):
    """``Monitor.score_frames`` on one camera's frames gives what bag-eval gives for the same frames
    with the same options (smoothing, the reference gate, a too-small frame, a resolution change)."""
    pytest.importorskip("rosbags", reason="rosbags not installed (pip install rosbags)")
    from helpers_bag import write_image_bag

    from hirqa_ros import open_monitor
    from hirqa_ros.bag.evaluate import evaluate_bag

    sizes = [(64, 48)] * 4 + [(12, 10)] + [(80, 60)] * 4
    frames = [scene(h, w, seed=40 + i) for i, (w, h) in enumerate(sizes)]
    stamps = [7_000_000_000 + i * 100_000_000 for i in range(len(frames))]
    mon = open_monitor(random_model_dir, "onnxruntime", smoothing=0.5, batch_size=3)
    assert mon.thresholds == mon.scorer.thresholds  # the card's, for the precision that runs
    got = mon.score_frames(frames, stamps=stamps, clocks=[s / 1e9 for s in stamps])
    write_image_bag(tmp_path / "bag", frames, "/cam/image", stamps[0])
    rows = evaluate_bag(tmp_path / "bag", tmp_path / "out", scorer=mon.scorer, smoothing=0.5, batch=3,
                        progress=False, plots=False).rows
    assert len(got) == len(rows) == len(frames)
    assert got[4].reason == TOO_SMALL and got[4].score is None and got[4].verdict == "error"
    assert got[5].smoothed == got[5].score  # the resolution changed: smoothing restarted
    for g, r in zip(got, rows):
        level = "" if g.level is None else g.level.name
        assert (g.verdict, g.reason, level) == (r.verdict, r.reason, r.level)
        assert g.score == r.score and g.smoothed == r.smoothed and g.reference == r.reference
    with pytest.raises(ValueError, match="stamps"):
        mon.score_frames(frames, stamps=stamps[:2])


def test_judge_scores_each_frame_alone_with_the_published_fault(random_model_dir):
    from hirqa_ros import open_monitor
    from hirqa_ros.evaluation.model_fn import evaluation_monitor, pipeline_score_fn

    mon = open_monitor(random_model_dir, "onnxruntime")
    frames = [scene(48, 64, seed=s) for s in range(5)]
    alone = [mon.score_frames([f])[0] for f in frames]  # each a camera of its own
    judged = mon.judge(frames)
    assert [j.score for j in judged] == [a.score for a in alone]
    assert [j.level for j in judged] == [a.level for a in alone]
    scores = pipeline_score_fn(evaluation_monitor(mon.scorer))(frames)  # no fault head: scores only
    np.testing.assert_array_equal(scores, mon.scorer.score(frames).astype(np.float64))


def test_every_refusal_reason_has_a_node_counter():
    pytest.importorskip("rclpy", reason="rclpy not installed")
    from hirqa_ros.node.stats import BAD_INPUT
    from hirqa_ros.refusals import REASONS

    assert set(BAD_INPUT) == set(REASONS)
