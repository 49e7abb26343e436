"""The one preprocessing path: policies, pixel formats, odd and tiny sizes, clear errors."""

import numpy as np
import pytest

from hirqa_ros.preprocess import MEAN, MIN_SIDE, STD, InputPolicy, normalize, policy_views, prepare, to_rgb8


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_policy_parse_and_str_round_trip():
    for text in ("native", "max-side:640", "crops:5x224"):
        assert str(InputPolicy.parse(text)) == text
    assert InputPolicy.parse(None).kind == "native"
    for bad in ("max-side:8", "crops:0x224", "crops:3", "resize", "max-side:abc"):
        with pytest.raises(ValueError, match="bad input policy"):
            InputPolicy.parse(bad)


def test_native_keeps_size_and_normalises_with_authors_stats():
    img = _rgb(67, 45)
    (batch,) = prepare([img], "native")
    assert batch.array.shape == (1, 3, 67, 45) and batch.array.dtype == np.float32
    expected = (img[5, 7].astype(np.float32) / 255.0 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(batch.array[0, :, 5, 7], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(batch.owners, [0])


def test_bgr_flag_swaps_channels():
    img = _rgb(40, 40)
    a = prepare([img], bgr=False)[0].array
    b = prepare([img[:, :, ::-1]], bgr=True)[0].array
    np.testing.assert_array_equal(a, b)


def test_max_side_shrinks_keeping_aspect_and_never_enlarges():
    (view,) = policy_views(_rgb(300, 401), InputPolicy.parse("max-side:100"))
    assert max(view.shape[:2]) == 100 and view.shape[:2] == (75, 100)
    (small,) = policy_views(_rgb(60, 80), InputPolicy.parse("max-side:100"))
    assert small.shape[:2] == (60, 80)


def test_crops_count_size_and_owners():
    frames = [_rgb(100, 150, 1), _rgb(97, 61, 2)]
    batches = prepare(frames, "crops:5x48")
    assert len(batches) == 1
    (b,) = batches
    assert b.array.shape == (10, 3, 48, 48)
    np.testing.assert_array_equal(b.owners, [0] * 5 + [1] * 5)
    # the crops are at native resolution: the first one is the top-left corner
    np.testing.assert_array_equal(
        policy_views(frames[0], InputPolicy.parse("crops:4x48"))[0], frames[0][:48, :48]
    )


def test_single_crop_is_centred():
    img = _rgb(100, 120)
    (view,) = policy_views(img, InputPolicy.parse("crops:1x40"))
    np.testing.assert_array_equal(view, img[30:70, 40:80])


def test_crops_larger_than_frame_upscale_the_frame_first():
    views = policy_views(_rgb(20, 40), InputPolicy.parse("crops:2x64"))
    assert [v.shape for v in views] == [(64, 64, 3)] * 2


@pytest.mark.parametrize("shape", [(5, 9), (1, 1), (31, 200), (12, 3, 3)])
def test_tiny_frames_upscaled_to_min_side_keeping_aspect(shape):
    img = np.full(shape, 128, np.uint8)
    (view,) = policy_views(to_rgb8(img), InputPolicy.parse("native"))
    h, w = view.shape[:2]
    assert min(h, w) == MIN_SIDE
    if shape[:2] == (31, 200):
        assert (h, w) == (32, round(200 * 32 / 31))
    (batch,) = prepare([img])
    assert min(batch.array.shape[2:]) == MIN_SIDE


def test_odd_sizes_group_into_one_batch_per_size():
    frames = [_rgb(33, 47), _rgb(51, 77), _rgb(33, 47)]
    batches = prepare(frames)
    sizes = sorted(tuple(b.array.shape[2:]) for b in batches)
    assert sizes == [(33, 47), (51, 77)]
    owners = {tuple(b.array.shape[2:]): list(b.owners) for b in batches}
    assert owners[(33, 47)] == [0, 2] and owners[(51, 77)] == [1]


def test_grey_rgba_16bit_float_bool_converted():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb8(grey).shape == (3, 4, 3) and (to_rgb8(grey)[..., 1] == grey).all()
    assert to_rgb8(grey[..., None]).shape == (3, 4, 3)
    rgba = np.dstack([_rgb(4, 4), np.zeros((4, 4), np.uint8)])
    np.testing.assert_array_equal(to_rgb8(rgba), rgba[..., :3])
    bgra = rgba.copy()
    np.testing.assert_array_equal(to_rgb8(bgra, bgr=True), rgba[..., 2::-1])
    deep = np.array([[0, 257 * 128, 65535]], np.uint16)
    np.testing.assert_array_equal(to_rgb8(deep)[0, :, 0], [0, 128, 255])
    flt = np.array([[0.0, 0.5, 1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(to_rgb8(flt)[0, :, 0], [0, 128, 255, 255])
    assert to_rgb8(np.array([[True, False]]))[0, 0, 0] == 255


def test_zero_size_and_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="empty image"):
        prepare([np.zeros((0, 10, 3), np.uint8)])
    with pytest.raises(ValueError, match="expected HxW"):
        to_rgb8(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="unsupported pixel type"):
        to_rgb8(np.zeros((4, 4, 3), np.int64))


def test_normalize_matches_prepare():
    views = [_rgb(40, 40, 3), _rgb(40, 40, 4)]
    np.testing.assert_array_equal(normalize(views), prepare(views)[0].array)
