"""files.py: one image reader (16-bit rule) for scoring, evaluation and training; atomic writes; JSON."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hirqa_ros import files, media


def test_sixteen_bit_images_are_rounded_the_same_everywhere(tmp_path):
    pytest.importorskip("torch", reason="training needs torch")
    from hirqa_ros.training.data.photos import load_images
    from hirqa_ros.training.data.prepare import read_rgb

    bgr = np.zeros((20, 30, 3), np.uint16)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 450, 65535, 100  # 450/257 = 1.75 -> 2 (truncating: 1)
    assert cv2.imwrite(str(tmp_path / "deep.png"), bgr)
    got = files.read_image(tmp_path / "deep.png")
    assert got.dtype == np.uint8 and tuple(got[0, 0]) == (0, 255, 2)  # RGB
    np.testing.assert_array_equal(media.read_image(tmp_path / "deep.png"), got)
    np.testing.assert_array_equal(load_images(tmp_path)[0][1], got)
    np.testing.assert_array_equal(read_rgb(tmp_path / "deep.png"), got)


def test_read_image_says_why(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"junk" * 10)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="0 bytes"):
        files.read_image(tmp_path / "empty.png")
    with pytest.raises(ValueError, match="corrupt or unsupported image"):
        files.read_image(tmp_path / "junk.png")
    with pytest.raises(ValueError, match="not an image or video"):
        files.read_image(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="cannot read"):
        files.read_image(tmp_path / "missing.png")


def test_atomic_write_replaces_whole_files_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "out.json"
    files.write_json(p, {"a": np.float32(0.5), "b": np.arange(2), "c": {"y", "x"}, "d": p})
    assert json.loads(p.read_text()) == {"a": 0.5, "b": [0, 1], "c": ["x", "y"], "d": str(p)}
    files.atomic_write_bytes(p, b"{}", fsync=True)
    assert p.read_bytes() == b"{}" and sorted(x.name for x in p.parent.iterdir()) == ["out.json"]
