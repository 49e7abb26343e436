"""The one preprocessing path: policies, pixel formats, odd and tiny sizes, views without copies,
the one staging copy (with the BGR swap folded in), reusable staging buffers, clear errors."""

import numpy as np
import pytest

from hirqa_ros.preprocess import (
    AUTHORS_NORMALISATION,
    MEAN,
    MIN_SIDE,
    STD,
    InputPolicy,
    as_batch,
    group_views,
    normalize,
    policy_views,
    prepare,
    stage,
    to_rgb8,
)
from hirqa_ros.staging import StagingPool


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


def test_norm_constants_are_the_authors_stats():
    scale, shift = (c.reshape(3) for c in AUTHORS_NORMALISATION.scale_shift())
    assert scale.dtype == shift.dtype == np.float32
    x = np.array([0, 128, 255], np.float32)
    for c in range(3):
        expected = (x / 255 - MEAN[c]) / STD[c]
        np.testing.assert_allclose(x * scale[c] - shift[c], expected, rtol=1e-6, atol=1e-6)


def test_native_and_crop_views_are_slices_of_the_frame_not_copies():
    frame = _rgb(120, 160)
    (g,) = group_views([frame], "native")
    assert g.views[0] is frame or np.shares_memory(g.views[0], frame)
    (g,) = group_views([frame], "crops:4x64")
    assert len(g.views) == 4 and all(np.shares_memory(v, frame) for v in g.views)
    np.testing.assert_array_equal(g.owners, [0, 0, 0, 0])
    (g,) = group_views([frame], "max-side:80")  # a resize is a copy: nothing to share
    assert g.shape == (60, 80) and not np.shares_memory(g.views[0], frame)


def test_stage_copies_once_and_swaps_bgr_during_the_copy():
    rgb = [_rgb(30, 40, 1), _rgb(30, 40, 2)]
    out = np.empty((2, 30, 40, 3), np.uint8)
    staged = stage([rgb[0], rgb[1][:, :, ::-1]], [False, True], out)
    assert staged is out
    np.testing.assert_array_equal(out, np.stack(rgb))
    # the same views staged for a BGR network come out BGR
    stage([rgb[0], rgb[1][:, :, ::-1]], [False, True], out, channel_order="BGR")
    np.testing.assert_array_equal(out, np.stack(rgb)[..., ::-1])


def test_bgr_frames_give_the_same_network_input_as_rgb():
    img = _rgb(40, 50)
    (a,) = group_views([img])
    (b,) = group_views([np.ascontiguousarray(img[:, :, ::-1])], bgr=True)
    assert b.bgr == [True]
    sa = stage(a.views, a.bgr, np.empty((1, 40, 50, 3), np.uint8))
    sb = stage(b.views, b.bgr, np.empty((1, 40, 50, 3), np.uint8))
    np.testing.assert_array_equal(sa, sb)


def test_as_batch_is_zero_copy_only_for_one_contiguous_frame_in_the_right_order():
    frame = _rgb(40, 50)
    (g,) = group_views([frame])
    batch = as_batch(g)
    assert batch.shape == (1, 40, 50, 3) and np.shares_memory(batch, frame)
    assert as_batch(g, "BGR") is None  # needs a swap: staged instead
    (g2,) = group_views([frame, frame])
    assert as_batch(g2) is None
    (crop,) = group_views([frame], "crops:1x32")
    assert as_batch(crop) is None  # a crop view is not contiguous


def test_converted_pixel_formats_go_through_to_rgb8():
    grey16 = np.full((8, 9), 65535, np.uint16)
    (g,) = group_views([grey16], bgr=True)
    assert g.bgr == [False] and g.views[0].dtype == np.uint8 and (g.views[0] == 255).all()


def test_staging_pool_reuses_buffers_per_shape():
    pool = StagingPool(max_shapes=2, per_shape=1)
    a = pool.acquire((2, 4, 5, 3))
    assert a.dtype == np.uint8 and a.flags.c_contiguous and a.shape == (2, 4, 5, 3)
    b = pool.acquire((2, 4, 5, 3))  # a is still out: a second buffer
    assert b is not a and pool.allocations == 2
    pool.release(a)
    pool.release(b)  # only one kept per shape
    assert pool.acquire((2, 4, 5, 3)) is a and pool.allocations == 2
    for shape in ((1, 4, 4, 3), (1, 8, 8, 3), (1, 9, 9, 3)):
        pool.release(pool.acquire(shape))
    assert len(pool._free) == 2  # least recently used shapes dropped
