"""The cheap per-frame cue: the same numbers from raw and compressed messages of a frame, a sudden
drop named for blur, lights out, glare and overexposure of real photos, none for a clean neighbour
frame, and a robust (median) reference."""
from __future__ import annotations

import array
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hirqa_ros.degradations import degrade
from hirqa_ros.frame_cue import (
    CueReference,
    FrameCue,
    cue_of_grey,
    cue_of_msg,
    cue_of_rgb,
    grey_of_msg,
    sudden_drop,
)
from hirqa_ros.imgmsg import ImageDecodeError, rgb_to_compressed_fields, rgb_to_image_fields
from hirqa_ros.media import read_image

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "hirqa_ros" / "data" / "samples").glob("*.jpg"))


def _photo(i: int = 0, w: int = 640, h: int = 480) -> np.ndarray:
    import cv2

    if not SAMPLES:
        pytest.skip("no sample photos")
    return cv2.resize(read_image(SAMPLES[i % len(SAMPLES)]), (w, h), interpolation=cv2.INTER_AREA)


def _raw(rgb: np.ndarray, encoding: str = "rgb8", padding: int = 0) -> SimpleNamespace:
    f = rgb_to_image_fields(rgb, encoding, padding=padding)
    return SimpleNamespace(height=f["height"], width=f["width"], encoding=f["encoding"], step=f["step"],
                           is_bigendian=f["is_bigendian"], data=array.array("B", bytes(f["data"])))


def _compressed(rgb: np.ndarray, fmt: str) -> SimpleNamespace:
    f = rgb_to_compressed_fields(rgb, fmt)
    return SimpleNamespace(format=f["format"], data=array.array("B", bytes(f["data"])))


def test_grey_copy_is_small_and_cue_fields_are_sane():
    rgb = _photo()
    g = grey_of_msg(_raw(rgb), compressed=False)
    assert g.shape == (120, 160) and g.dtype == np.uint8
    c = cue_of_grey(g)
    assert c.sharpness > 50 and 20 < c.mean < 235 and 0 <= c.clipped < 0.2
    black = cue_of_grey(np.zeros((120, 160), np.uint8))
    assert black.sharpness == 0 and black.mean == 0 and black.clipped == 1.0


@pytest.mark.parametrize("encoding,padding", [("rgb8", 0), ("bgr8", 0), ("rgb8", 8), ("rgba8", 0),
                                              ("mono8", 0), ("rgb16", 0), ("yuv422", 0)])
def test_raw_encodings_give_the_same_cue(encoding, padding):
    rgb = _photo(1)
    ref = cue_of_rgb(rgb)
    c = cue_of_msg(_raw(rgb, encoding, padding), compressed=False)
    assert abs(c.mean - ref.mean) < 3 and abs(c.clipped - ref.clipped) < 0.02
    assert 0.6 < c.sharpness / ref.sharpness < 1.4  # mono/yuv lose the chroma, 16 bit rounds


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_gives_the_cue_of_the_raw_frame(fmt):
    rgb = _photo(2)
    ref = cue_of_msg(_raw(rgb), compressed=False)
    c = cue_of_msg(_compressed(rgb, fmt), compressed=True)
    assert grey_of_msg(_compressed(rgb, fmt), compressed=True).shape == (120, 160)
    assert abs(c.mean - ref.mean) < 3
    assert 0.7 < c.sharpness / ref.sharpness < 1.3  # JPEG's DCT-domain scaling is not area averaging


def test_broken_messages_raise_decode_error():
    rgb = _photo()
    short = _raw(rgb)
    short.data = short.data[:1000]
    with pytest.raises(ImageDecodeError):
        cue_of_msg(short, compressed=False)
    jpeg = _compressed(rgb, "jpeg")
    jpeg.data = jpeg.data[: len(jpeg.data) // 2]  # truncated
    with pytest.raises(ImageDecodeError):
        cue_of_msg(jpeg, compressed=True)
    with pytest.raises(ImageDecodeError):
        cue_of_msg(SimpleNamespace(format="jpeg", data=array.array("B", b"not an image")), compressed=True)


@pytest.mark.parametrize("i", range(5))
def test_sudden_drops_are_named_and_clean_neighbours_pass(i):
    rgb = _photo(i)
    ref = cue_of_rgb(rgb)
    # a neighbouring clean frame: shifted by a few pixels, a little sensor noise
    nxt = np.clip(np.roll(rgb, (3, 5), (0, 1)).astype(np.int16)
                  + np.random.default_rng(i).integers(-2, 3, rgb.shape), 0, 255).astype(np.uint8)
    assert sudden_drop(cue_of_rgb(nxt), ref) is None
    assert sudden_drop(cue_of_rgb(degrade(rgb, "low_light", 5, seed=i)), ref) == "dark"
    assert sudden_drop(cue_of_rgb(degrade(rgb, "defocus", 5, seed=i)), ref) == "blur"
    assert sudden_drop(cue_of_rgb(degrade(rgb, "camera_shake", 5, seed=i)), ref) == "blur"
    assert sudden_drop(cue_of_rgb(np.zeros_like(rgb)), ref) == "dark"
    assert sudden_drop(cue_of_rgb(degrade(rgb, "overexposure", 5, seed=i)), ref) in ("bright", "clipped")


def test_reference_is_the_median_of_recent_frames():
    ref = CueReference(size=5)
    assert ref.value() is None and len(ref) == 0
    for s in (100, 110, 90, 105, 5000):  # one outlier does not move a median
        ref.add(FrameCue(s, 100.0, 0.0))
    assert ref.value() == FrameCue(105.0, 100.0, 0.0)
    for _ in range(5):
        ref.add(FrameCue(10.0, 50.0, 0.5))
    assert ref.value() == FrameCue(10.0, 50.0, 0.5) and len(ref) == 5  # only the last 5 count
    ref.reset()
    assert ref.value() is None


@pytest.mark.parametrize("w,h", [(1000, 700), (1280, 960), (200, 150)])
def test_jpeg_of_any_size_becomes_a_grey_copy_of_at_most_cue_side(w, h):
    g = grey_of_msg(_compressed(_photo(3, w, h), "jpeg"), compressed=True)
    assert max(g.shape) == min(160, max(w, h)) and g.dtype == np.uint8


def test_a_jpeg_declaring_a_huge_size_is_refused_before_decoding():
    import struct

    jpeg = _compressed(_photo(), "jpeg")
    data = bytearray(jpeg.data)
    sof = next(i for i in range(2, len(data) - 9) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC2))
    data[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)  # 3.6 GP declared
    with pytest.raises(ImageDecodeError, match="decoding limit"):
        cue_of_msg(SimpleNamespace(format="jpeg", data=array.array("B", bytes(data))), compressed=True)
