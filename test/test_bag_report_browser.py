"""report.html in a real headless browser (Debian's chromium + chromium-driver, driven by Selenium):
no console errors, the fleet table sorts and filters, timelines and thumbnails render, the page is
not blank, and all of that with 100 bags (synthetic bag results: the report is what is tested)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from hirqa_ros.bag.fleet_summary import bag_entry, totals
from hirqa_ros.bag.frames import FrameRow, write_frames_csv
from hirqa_ros.bag.report import render, write_report
from hirqa_ros.bag.summary import topic_summary

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000"]
FAULTS = ["haze", "blur", "low_light", "glare"]


def _need_browser():
    missing = [n for n, p in (("chromium", CHROMIUM), ("chromedriver", DRIVER)) if not p]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if not missing:
        return
    why = f"{', '.join(missing)} missing (apt-get install chromium chromium-driver; pip install selenium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run the browser test: {why}")  # .ci/run installs them
    pytest.skip(why)


@pytest.fixture
def browser():
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for f in FLAGS:
        opts.add_argument(f)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=opts, service=Service(DRIVER))
    try:
        yield d
    finally:
        d.quit()


def _synthetic_bag(folder: Path, i: int, rng: np.random.Generator) -> dict:
    """A finished bag's result folder (frames.csv, summary.json, thumbnails) without scoring anything."""
    folder.mkdir(parents=True)
    rows: list[FrameRow] = []
    summary_topics = {}
    for cam in ("/front/image_raw", "/rear/image_raw"):
        cam_rows = []
        for k in range(150):
            r = FrameRow(cam, 1_700_000_000_000_000_000 + k * 100_000_000, stamp_ns=None)
            if k % 37 == 5:
                r.verdict, r.error, r.reason = "error", "cannot decode image", "decode_error"
            else:
                r.score = float(np.clip(0.6 + 0.1 * np.sin(k / 9 + i) - (0.3 if 40 < k < 40 + i % 30 else 0)
                                        + rng.normal(0, 0.02), 0, 1))
                r.level = "OK" if r.score >= 0.48 else "ERROR"
                r.verdict = "keep" if r.level == "OK" else "drop"
                r.fault = "none" if r.verdict == "keep" else FAULTS[(i + k // 50) % 4]
            cam_rows.append(r)
        rows += cam_rows
        summary_topics[cam] = {"type": "sensor_msgs/msg/Image", **topic_summary(cam_rows)}
    write_frames_csv(rows, folder / "frames.csv")
    thumbs = []
    (folder / "thumbs").mkdir()
    for j, r in enumerate(sorted((r for r in rows if r.verdict == "drop"), key=lambda r: r.score)[:3]):
        img = np.full((72, 96, 3), 40 + 50 * j, np.uint8)
        cv2.circle(img, (48, 36), 20, (200, 80, 30), -1)
        cv2.imwrite(str(folder / "thumbs" / f"{j:03d}.jpg"), img)
        thumbs.append({"file": f"thumbs/{j:03d}.jpg", "topic": r.topic, "bag_time_ns": r.bag_time_ns,
                       "stamp_ns": None, "score": r.score, "level": r.level, "fault": r.fault,
                       "fault_confidence": 0.8})
    (folder / "thumbs.json").write_text(json.dumps(thumbs))
    summary = {"bag": str(folder), "thresholds": {"warn": 0.48, "error": 0.46, "source": "test"},
               "overall": {"frames": len(rows), "scored": sum(r.score is not None for r in rows),
                           "errors": sum(r.verdict == "error" for r in rows), "bag_duration_s": 14.9},
               "topics": summary_topics, "problems": [], "decisions": {"carried": i}}
    (folder / "summary.json").write_text(json.dumps(summary))
    return summary


def _fleet_report(tmp_path: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    entries = []
    for i in range(n):
        d = tmp_path / "bags" / f"drive{i:03d}"
        _synthetic_bag(d, i, rng)
        entries.append(bag_entry(f"drive{i:03d}", f"/data/drive{i:03d}", "done", d))
    entries.append(bag_entry("broken", "/data/broken", "failed", None, "nothing readable: <garbage> & more"))
    summary = {"complete": True, "left": [], "failed": ["broken"], "bags": entries, "totals": totals(entries),
               "model": {"name": "test", "dir": "/m", "card_sha256": "0" * 64},
               "options": {"smoothing": 0.0}, "run": {"bags_evaluated": n, "wall_time_s": 1.0},
               "engine": {"engine": "local", "workers": 1}}
    return write_report(tmp_path, summary)


def _not_blank(png: bytes) -> None:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[0] > 500
    non_white = np.mean(img.min(axis=2) < 200)
    colours = len(np.unique(img.reshape(-1, 3)[:: 7], axis=0))
    assert non_white > 0.03 and colours > 30, (non_white, colours)


def test_carried_keys_and_escaping_without_a_browser(tmp_path):
    path = _fleet_report(tmp_path, 3)
    html = path.read_text()
    assert "<garbage>" not in html and "&lt;garbage&gt; &amp; more" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    entry = bag_entry("drive000", "/x", "done", tmp_path / "bags" / "drive000")
    assert entry["decisions"] == {"carried": 0}  # another stage's per-bag keys are carried through
    assert render({"bags": []}).startswith("<!DOCTYPE html>")


@pytest.mark.slow  # over 10 s on the loaded 2-core machine
def test_report_in_headless_chromium_with_100_bags(tmp_path, browser):
    from selenium.webdriver.common.by import By

    path = _fleet_report(tmp_path, 100)
    browser.get(path.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    rows = browser.find_elements(By.CSS_SELECTOR, "#fleet tbody tr")
    assert len(rows) == 201  # 100 bags x 2 cameras + the failed bag
    # sort by "rejected" (column 6): ascending, then descending
    header = browser.find_elements(By.CSS_SELECTOR, "#fleet th")[5]
    assert header.text == "rejected"
    rows_js = "return Array.from(document.querySelectorAll('#fleet tbody tr'))"
    values = rows_js + ".map(r => parseFloat(r.cells[5].dataset.v))"
    header.click()
    asc = [v for v in browser.execute_script(values) if not np.isnan(v)]
    assert asc == sorted(asc) and asc[0] < asc[-1]
    header.click()
    desc = [v for v in browser.execute_script(values) if not np.isnan(v)]
    assert desc == sorted(desc, reverse=True)
    # the filter keeps only matching rows
    browser.find_element(By.ID, "filter").send_keys("drive042")
    shown = browser.execute_script(
        rows_js + ".filter(r => r.style.display != 'none').map(r => r.cells[1].textContent)")
    assert shown == ["/front/image_raw", "/rear/image_raw"]
    # timelines: one SVG per camera with a score line and shaded rejected frames; thumbnails decoded
    assert browser.execute_script("return document.querySelectorAll('svg polyline').length") == 200
    assert browser.execute_script("return document.querySelectorAll('svg rect').length") > 200
    imgs = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(imgs) >= 8 and all(c and w == 96 for c, w in imgs)
    _not_blank(browser.get_screenshot_as_png())
    links = [a for a in browser.find_elements(By.CSS_SELECTOR, "#fleet tbody tr a") if a.is_displayed()]
    assert links and all(a.text == "drive042" for a in links)
    links[0].click()  # a bag link jumps to its timelines
    assert browser.execute_script("return window.scrollY") > 0
    _not_blank(browser.get_screenshot_as_png())
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
