"""Bounded work per frame: sizes from headers, the decoding limit in every decoder, native tiles."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from hirqa_ros import limits, media
from hirqa_ros.imgmsg import ImageTooLarge, compressed_msg_to_rgb, image_msg_to_rgb, rgb_to_image_fields


class Msg:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def _png_declaring(width: int, height: int) -> bytes:
    """A small valid PNG re-labelled (IHDR, with a correct CRC) to declare ``width x height``."""
    _ok, enc = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(enc.tobytes())
    ihdr = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    return bytes(data)


@pytest.mark.parametrize(
    "fmt,params", [(".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])]
)
def test_declared_size_from_headers(fmt, params):
    img = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    _ok, enc = cv2.imencode(fmt, img, params)
    assert limits.declared_size(enc.reshape(-1)) == (53, 37)
    assert limits.declared_size(enc.tobytes()) == (53, 37)
    assert limits.declared_size(b"BM not a png") is None


def test_small_png_declaring_huge_size_is_refused_before_decoding(tmp_path):
    data = _png_declaring(100_000, 100_000)
    assert len(data) < 200 and limits.declared_size(data) == (100_000, 100_000)
    with pytest.raises(ImageTooLarge, match=r"10000\.0 MP is above the decoding limit"):
        compressed_msg_to_rgb(Msg(format="png", data=data))
    p = tmp_path / "bomb.png"
    p.write_bytes(data)
    with pytest.raises(ValueError, match="above the decoding limit"):
        media.read_image(p)
    (item,) = list(media.iter_media([p]))
    assert isinstance(item, media.MediaError) and "refused before decoding" in item.message


def test_raw_image_declaring_huge_size_is_refused():
    f = rgb_to_image_fields(np.zeros((4, 4, 3), np.uint8))
    msg = Msg(**{**f, "height": 60_000, "width": 60_000, "step": 180_000})
    with pytest.raises(ImageTooLarge, match="above the decoding limit"):
        image_msg_to_rgb(msg)
    small = Msg(**f)
    assert image_msg_to_rgb(small).shape == (4, 4, 3)
    with pytest.raises(ImageTooLarge):
        image_msg_to_rgb(small, max_decode_pixels=15)


@pytest.mark.parametrize("h,w", [(8000, 8000), (2160, 4096), (2161, 4096), (3000, 4000), (100, 50_000)])
def test_oversized_frame_tiles_are_native_and_cover_the_frame(h, w):
    max_pixels = limits.DEFAULT_MAX_PIXELS
    frame = np.zeros((h, w, 3), np.uint8)
    parts = limits.tiles(frame, max_pixels)
    if h * w <= max_pixels:
        assert len(parts) == 1 and parts[0] is frame
        return
    covered = np.zeros((h, w), bool)
    for t in parts:
        assert t.shape[0] * t.shape[1] <= max_pixels
        assert np.shares_memory(t, frame)  # a view at native resolution, not a resized copy
        off = t.__array_interface__["data"][0] - frame.ctypes.data
        y, x = divmod(off // 3, w)
        covered[y:y + t.shape[0], x:x + t.shape[1]] = True
    assert covered.all()
    assert len({t.shape for t in parts}) == 1  # equal tiles: one batch size


def test_score_bounded_averages_tiles_and_keeps_calls_under_the_limit():
    """The grouping logic only, with a stand-in score (mean brightness / 255), not a model."""
    calls = []

    def score(frames):
        calls.append(sum(f.shape[0] * f.shape[1] for f in frames))
        return np.array([f.mean() / 255 for f in frames])

    big = np.zeros((100, 100, 3), np.uint8)
    big[:, 50:] = 255  # half white: tiles average to 0.5
    small = np.full((10, 10, 3), 51, np.uint8)
    scores, counts = limits.score_bounded(score, [small, big, small], max_pixels=2500)
    assert counts[0] == 1 and counts[1] >= 4 and counts[2] == 1
    assert scores == pytest.approx([0.2, 0.5, 0.2], abs=1e-6)
    assert max(calls) <= 2500
    scores, counts = limits.score_bounded(score, [big], max_pixels=0)  # 0: no limit
    assert counts == [1] and scores[0] == pytest.approx(0.5)


@pytest.mark.slow
def test_memory_is_released_after_an_oversized_frame(random_model_dir):
    """ONNX Runtime's arena gives back what a 4000x3000 frame took (it used to keep ~1 GB)."""
    from hirqa_ros import load_scorer
    from hirqa_ros.monitor import score_frames

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    scorer = load_scorer(random_model_dir, backend="onnxruntime")
    small = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    score_frames(scorer, [small])
    before = rss_mb()
    big = np.random.default_rng(1).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)
    (out,) = score_frames(scorer, [big])
    assert out.score is not None and out.tiles == 2
    del big
    score_frames(scorer, [small])
    grown = rss_mb() - before
    assert grown < 250, f"RSS stayed {grown:.0f} MB above its level before the 4000x3000 frame"
