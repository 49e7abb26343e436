"""hirqa_ros.imgmsg: every encoding, padding, endianness, compressed bytes, and the refusals."""
from __future__ import annotations

import array
import types

import cv2
import numpy as np
import pytest

from hirqa_ros.imgmsg import (
    ENCODINGS,
    ImageDecodeError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    msg_to_rgb,
    rgb_to_compressed_fields,
    rgb_to_image_fields,
)


def _scene(h: int = 24, w: int = 32) -> np.ndarray:
    """A smooth colourful image (smooth, so chroma subsampling and demosaicing stay close)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([40 + 180 * x / w, 60 + 150 * y / h, 200 - 120 * (x + y) / (w + h)], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _msg(**fields) -> types.SimpleNamespace:
    return types.SimpleNamespace(**fields)


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


EXACT = ["rgb8", "bgr8", "rgba8", "bgra8", "rgb16", "bgr16", "rgba16", "bgra16", "8UC3", "8UC4", "16UC3"]
LOSSY = ["yuv422", "uyvy", "yuyv", "yuv422_yuy2", "nv12", "nv21",
         "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
         "bayer_rggb16", "bayer_bggr16", "bayer_gbrg16", "bayer_grbg16"]


@pytest.mark.parametrize("encoding", EXACT)
@pytest.mark.parametrize("padding", [0, 5])
@pytest.mark.parametrize("bigendian", [False, True])
def test_colour_encodings_round_trip_exactly(encoding, padding, bigendian):
    rgb = _scene()
    fields = rgb_to_image_fields(rgb, encoding, padding=padding, is_bigendian=bigendian)
    channels = 4 if ("a" in encoding[-3:-1] or encoding.endswith("C4")) else 3
    depth = 2 if "16" in encoding else 1
    assert fields["step"] == rgb.shape[1] * channels * depth + padding
    out = image_msg_to_rgb(_msg(**fields))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("encoding", ["mono8", "mono16", "8UC1", "16UC1"])
@pytest.mark.parametrize("bigendian", [False, True])
def test_mono_encodings_give_grey_rgb(encoding, bigendian):
    rgb = _scene()
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = image_msg_to_rgb(_msg(**rgb_to_image_fields(rgb, encoding, padding=3, is_bigendian=bigendian)))
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))


def test_mono16_byte_order_matters():
    """The same bytes read as little- and big-endian give the two expected images."""
    values = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 200  # low byte != high byte
    f = {"height": 16, "width": 16, "encoding": "mono16", "step": 32, "data": values.astype("<u2").tobytes()}
    little = image_msg_to_rgb(_msg(**f, is_bigendian=0))[:, :, 0]
    big = image_msg_to_rgb(_msg(**f, is_bigendian=1))[:, :, 0]
    np.testing.assert_array_equal(little, ((values.astype(np.uint32) + 128) // 257).astype(np.uint8))
    swapped = values.byteswap()
    np.testing.assert_array_equal(big, ((swapped.astype(np.uint32) + 128) // 257).astype(np.uint8))


@pytest.mark.parametrize("encoding", LOSSY)
def test_subsampled_encodings_match_rosbags_image(encoding):
    """YUV and Bayer: close to the source and identical to rosbags-image's independent decoder."""
    ri = pytest.importorskip(
        "rosbags.image", reason="rosbags-image not installed (pip install -e \".[dev]\")"
    )
    rgb = _scene(24, 32)
    fields = rgb_to_image_fields(rgb, encoding)
    out = image_msg_to_rgb(_msg(**fields))
    assert out.shape == rgb.shape
    assert _mean_abs(out, rgb) < 6, encoding
    ref_fields = dict(fields)
    if encoding.startswith("nv"):  # rosbags-image counts the chroma rows in `height`
        ref_fields["height"] = fields["height"] * 3 // 2
        np.testing.assert_array_equal(image_msg_to_rgb(_msg(**ref_fields)), out)
    ref = ri.message_to_cvimage(_msg(**ref_fields), "rgb8")
    assert _mean_abs(out, ref) < 1.0, encoding


def test_bayer_red_pixel_positions():
    """A pure red scene mosaiced as RGGB decodes red, not blue (pattern naming is easy to get wrong)."""
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200
    for enc in ("bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8"):
        out = image_msg_to_rgb(_msg(**rgb_to_image_fields(red, enc)))
        assert out[4, 4, 0] > 150 and out[4, 4, 2] < 50, enc


def test_padding_bytes_are_ignored():
    rgb = _scene()
    f = rgb_to_image_fields(rgb, "rgb8", padding=7)
    assert f["step"] == rgb.shape[1] * 3 + 7
    data = f["data"].copy().reshape(rgb.shape[0], -1)
    data[:, -7:] = 255  # garbage in the padding
    out = image_msg_to_rgb(_msg(**{**f, "data": data.reshape(-1)}))
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("kind", ["bytes", "array", "list", "numpy"])
def test_data_container_types(kind):
    rgb = _scene(6, 5)
    f = rgb_to_image_fields(rgb, "bgr8")
    raw = f["data"]
    f["data"] = {"bytes": raw.tobytes(), "array": array.array("B", raw.tobytes()),
                 "list": raw.tolist(), "numpy": raw}[kind]
    np.testing.assert_array_equal(image_msg_to_rgb(_msg(**f)), rgb)


def test_rclpy_and_rosbags_messages():
    rgb = _scene()
    f = rgb_to_image_fields(rgb, "rgb8", padding=2)
    try:
        from sensor_msgs.msg import Image
    except ImportError:
        Image = None
    if Image is not None:
        m = Image(height=f["height"], width=f["width"], encoding=f["encoding"], step=f["step"],
                  is_bigendian=f["is_bigendian"], data=array.array("B", f["data"].tobytes()))
        np.testing.assert_array_equal(msg_to_rgb(m), rgb)
    typesys = pytest.importorskip(
        "rosbags.typesys", reason="rosbags not installed (pip install -e \".[bag]\")"
    )
    ts = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
    T = ts.types
    stamp = T["builtin_interfaces/msg/Time"](sec=1, nanosec=2)
    header = T["std_msgs/msg/Header"](stamp=stamp, frame_id="cam")
    m = T["sensor_msgs/msg/Image"](header=header, **f)
    np.testing.assert_array_equal(msg_to_rgb(m), rgb)
    c = T["sensor_msgs/msg/CompressedImage"](header=header, **rgb_to_compressed_fields(rgb, "png"))
    np.testing.assert_array_equal(msg_to_rgb(c), rgb)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
@pytest.mark.parametrize("label", ["rgb8; jpeg compressed bgr8", "png", "nonsense", ""])
def test_compressed_decoded_from_bytes_whatever_format_says(fmt, label):
    rgb = _scene(32, 48)
    f = rgb_to_compressed_fields(rgb, fmt, quality=95)
    out = compressed_msg_to_rgb(_msg(format=label, data=f["data"].tobytes()))
    assert out.shape == rgb.shape
    assert _mean_abs(out, rgb) < (3 if fmt == "jpeg" else 0.01)


def test_compressed_grey_png_and_16bit_png():
    grey = cv2.cvtColor(_scene(), cv2.COLOR_RGB2GRAY)
    ok, png = cv2.imencode(".png", grey)
    assert ok
    out = compressed_msg_to_rgb(_msg(format="mono8; png", data=png.tobytes()))
    np.testing.assert_array_equal(out[:, :, 1], grey)
    ok, png16 = cv2.imencode(".png", grey.astype(np.uint16) * 257)
    header = b"\x00" * 12  # compressedDepth puts a small header before the PNG
    out16 = compressed_msg_to_rgb(_msg(format="16UC1; compressedDepth png", data=header + png16.tobytes()))
    np.testing.assert_array_equal(out16[:, :, 0], grey)


# ---- refusals: each bad input raises ImageDecodeError with a message that says what is wrong ----

def test_unsupported_encoding():
    f = rgb_to_image_fields(_scene(), "rgb8")
    with pytest.raises(ImageDecodeError, match="unsupported encoding '32FC1'"):
        image_msg_to_rgb(_msg(**{**f, "encoding": "32FC1"}))
    with pytest.raises(ImageDecodeError, match="unsupported encoding"):
        image_msg_to_rgb(_msg(**{**f, "encoding": ""}))


def test_short_data_and_small_step():
    f = rgb_to_image_fields(_scene(), "rgb8")
    with pytest.raises(ImageDecodeError, match="step x height needs"):
        image_msg_to_rgb(_msg(**{**f, "data": f["data"][:-1]}))
    with pytest.raises(ImageDecodeError, match="smaller than one row"):
        image_msg_to_rgb(_msg(**{**f, "step": f["step"] - 3}))
    n = rgb_to_image_fields(_scene(), "nv12")
    with pytest.raises(ImageDecodeError, match="step x height needs"):
        image_msg_to_rgb(_msg(**{**n, "data": n["data"][: n["step"] * n["height"] - 1]}))


@pytest.mark.parametrize(("h", "w"), [(0, 0), (0, 10), (10, 0)])
def test_zero_size(h, w):
    with pytest.raises(ImageDecodeError, match="zero-size"):
        image_msg_to_rgb(_msg(height=h, width=w, encoding="rgb8", step=w * 3, is_bigendian=0, data=b""))


def test_one_pixel_decodes_but_odd_sizes_refused_where_impossible():
    one = image_msg_to_rgb(_msg(height=1, width=1, encoding="rgb8", step=3, is_bigendian=0,
                                data=b"\x01\x02\x03"))
    assert one.tolist() == [[[1, 2, 3]]]  # the converter decodes; the node refuses frames this small
    with pytest.raises(ImageDecodeError, match="2x2"):
        image_msg_to_rgb(_msg(height=1, width=1, encoding="bayer_rggb8", step=1, is_bigendian=0,
                              data=b"\x01"))
    with pytest.raises(ImageDecodeError, match="even width"):
        image_msg_to_rgb(_msg(height=2, width=3, encoding="yuyv", step=6, is_bigendian=0, data=bytes(12)))


def test_corrupt_and_truncated_compressed():
    f = rgb_to_compressed_fields(_scene(64, 64), "jpeg")
    data = f["data"].tobytes()
    with pytest.raises(ImageDecodeError, match="truncated JPEG"):
        compressed_msg_to_rgb(_msg(format="jpeg", data=data[: len(data) // 2]))
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        compressed_msg_to_rgb(_msg(format="jpeg", data=b"this is not an image at all"))
    with pytest.raises(ImageDecodeError, match="no data"):
        compressed_msg_to_rgb(_msg(format="jpeg", data=b""))
    png = rgb_to_compressed_fields(_scene(64, 64), "png")["data"].tobytes()
    with pytest.raises(ImageDecodeError):
        compressed_msg_to_rgb(_msg(format="png", data=png[: len(png) // 2]))


def test_not_a_message():
    with pytest.raises(ImageDecodeError):
        msg_to_rgb(object())
    with pytest.raises(ImageDecodeError, match="not a byte sequence"):
        image_msg_to_rgb(_msg(height=1, width=1, encoding="mono8", step=1, is_bigendian=0, data=object()))


def test_encodings_list_is_complete():
    for enc in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "yuv422", "uyvy", "yuyv",
                "yuv422_yuy2", "nv12", "nv21", "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
                "rgb16", "bgr16"):
        assert enc in ENCODINGS


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "mono8", "rgb16"])
def test_decoded_frame_owns_its_pixels(encoding):
    """The decoded frame never aliases the message buffer (it can outlive the message), whatever the
    conversion did."""
    rgb = np.random.default_rng(0).integers(1, 256, (6, 8, 3), dtype=np.uint8)
    msg = types.SimpleNamespace(**rgb_to_image_fields(rgb, encoding))
    out = image_msg_to_rgb(msg)
    assert out.shape == (6, 8, 3) and not np.may_share_memory(out, msg.data)
    msg.data[:] = 0  # the message buffer is reused: the frame keeps its pixels
    assert out.any()
