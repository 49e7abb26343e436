"""The quality overlay (hirqa_ros.overlay, ROS-free) and the Foxglove layout in config/: sizes, what is
drawn, readable text, and a layout that names the topics the node publishes."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hirqa_ros.decision import Level
from hirqa_ros.overlay import LEVEL_RGB, MIN_TEXT_PX, downscale, draw_overlay, overlay_lines
from hirqa_ros.quality_msg import KEY_NAMES
from hirqa_ros.topics import CameraTopics

REPO = Path(__file__).resolve().parents[1]


def _photo(h=480, w=640, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1)
    return np.clip(base * 0.6 + rng.integers(0, 60, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape,max_side,expected", [
    ((480, 640), 320, (240, 320)), ((1080, 1920), 640, (360, 640)), ((100, 50), 640, (100, 50)),
    ((640, 480), 64, (64, 48))])
def test_downscaled_keeping_aspect_and_never_enlarged(shape, max_side, expected):
    out = draw_overlay(_photo(*shape), 0.5, Level.OK, max_side=max_side)
    assert out.shape == (*expected, 3) and out.dtype == np.uint8
    assert downscale(_photo(*shape), max_side).shape[:2] == expected


def test_the_input_frame_is_not_modified():
    rgb = _photo()
    before = rgb.copy()
    draw_overlay(rgb, 0.2, Level.ERROR, "haze", "no_content: black", max_side=1000)
    assert np.array_equal(rgb, before)


def test_lines_say_score_level_fault_and_reason():
    assert overlay_lines(0.4123, Level.WARN, "motion_blur", "") == ["WARN  score 0.412", "fault: motion_blur"]
    assert overlay_lines(0.9, Level.OK, "none", "") == ["OK  score 0.900"]  # a kept frame has no fault
    assert overlay_lines(0.1, Level.ERROR, "", "no_content: black")[-1] == "reason: no_content: black"


def test_level_colour_and_readable_text():
    """Banner and border in the level's colour; white text at least MIN_TEXT_PX high even on a small frame."""
    for level in (Level.OK, Level.WARN, Level.ERROR):
        out = draw_overlay(np.zeros((240, 320, 3), np.uint8), 0.5, level, "blur", "", max_side=320)
        corner = out[1, 1].astype(int)  # the border
        assert np.abs(corner - np.array(LEVEL_RGB[level])).max() <= 2
        white_rows = np.flatnonzero((out[:, 4:-4] >= 240).all(-1).any(1))
        assert white_rows.size and white_rows.max() < out.shape[0] // 2  # text in the top banner only
        first_line = white_rows[white_rows < white_rows.min() + 2 * MIN_TEXT_PX]
        assert first_line.max() - first_line.min() + 1 >= MIN_TEXT_PX - 2  # cap height in pixels


def test_foxglove_layout_shows_camera_overlay_score_plot_and_diagnostics():
    layout = json.loads((REPO / "config" / "foxglove_hirqa.json").read_text())
    panels = layout["configById"]
    cam = CameraTopics("/image")  # the node's default base topic in the root namespace
    images = {p["imageMode"]["imageTopic"] for k, p in panels.items() if k.startswith("Image!")}
    assert images == {cam.input, cam.overlay}
    assert {p["topicToRender"] for k, p in panels.items() if k.startswith("Diagnostic")} == {"/diagnostics"}
    (script,) = layout["userNodes"].values()
    source = script["sourceCode"]
    assert f'inputs = ["{cam.quality}"]' in source
    out_topic = re.search(r'output = "([^"]+)"', source).group(1)
    read = set(re.findall(r'value\("([a-z_]+)"\)', source))
    assert read and read <= set(KEY_NAMES)  # only keys the quality message has
    plotted = {p["value"] for k, cfg in panels.items() if k.startswith("Plot!") for p in cfg["paths"]}
    assert plotted and all(v.startswith(out_topic + ".") for v in plotted)
    assert {v.split(".", 1)[1] for v in plotted} <= read | {"level"}

    def leaves(node):
        return [node] if isinstance(node, str) else leaves(node["first"]) + leaves(node["second"])

    assert sorted(leaves(layout["layout"])) == sorted(panels)
