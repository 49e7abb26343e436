"""`hirqa prepare-data` on tiny fake inputs: a folder and a generated Debian package (dpkg -x path).
Photo filter, corrupt files reported and skipped, perceptual-hash dedupe, resize, split, manifest,
licences."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="OpenCV not installed (a core dependency: pip install -e .)")

from hirqa_ros.training.data import prepare as pd  # noqa: E402


def _photo(seed, h=288, w=384):
    """Distinct smooth layout plus texture and noise: passes the flat-fraction test like a photo."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(
        rng.uniform(0, 255, (4, 5, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    img = base + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _graphic(h=288, w=384):
    img = np.full((h, w, 3), (40, 90, 160), np.uint8)  # flat colour areas: vector-art like
    img[h // 4 : h // 2, w // 5 : w // 2] = (250, 200, 30)
    img[h // 2 :, w // 2 :] = (220, 60, 80)
    return img


def _write(path, rgb, quality=95):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])


def test_folder(tmp_path):
    src = tmp_path / "src"
    for i in range(4):
        _write(src / f"p{i}.jpg", _photo(i))
    big = cv2.resize(_photo(0), (768, 576), interpolation=cv2.INTER_CUBIC)
    _write(src / "sub" / "p0_large.jpg", big)  # the same picture at another resolution
    _write(src / "gradient.jpg", _graphic())
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    m = pd.prepare(out, folder=src, val_fraction=0.5, max_side=300)
    reasons = {Path(e["original_path"]).name: e["reason"] for e in m["excluded"]}
    assert reasons["corrupt.jpg"] == "unreadable" and reasons["gradient.jpg"].startswith("flat fraction")
    assert len(m["duplicates"]) == 1 and m["duplicates"][0]["original_path"] in ("p0.jpg", "sub/p0_large.jpg")
    assert m["counts"]["train"] + m["counts"]["val"] == 4 and m["counts"]["val"] == 2
    files = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.jpg"))
    assert files == sorted(i["file"] for i in m["images"])
    for i in m["images"]:
        img = cv2.imread(str(out / i["file"]))
        assert max(img.shape[:2]) <= 300 and i["split"] == i["file"].split("/")[0]
    groups = {}
    for i in m["images"]:
        groups.setdefault(i["content_group"], set()).add(i["split"])
    assert all(len(s) == 1 for s in groups.values())  # content-disjoint
    assert json.loads((out / "manifest.json").read_text())["counts"] == m["counts"]


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: backgrounds/photo*.jpg
Copyright: 2021, Ann Photographer
License: CC-BY-4.0

License: CC-BY-4.0
 long licence text here
"""


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed (Debian tools)")
def test_debian_package(tmp_path):
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: fake-wallpapers\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test\n"
    )
    bg = root / "usr/share/backgrounds"
    _write(bg / "photo1.jpg", _photo(10))
    _write(bg / "photo2.jpg", _photo(11))
    cv2.imwrite(str(bg / "art.png"), _graphic())  # graphics ship as PNG: excluded
    (bg / "photo1_link.jpg").symlink_to("photo1.jpg")  # same file twice: listed once
    doc = root / "usr/share/doc/fake-wallpapers"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    debs = tmp_path / "debs"
    debs.mkdir()
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(root), str(debs / "fake-wallpapers_1.0-1_all.deb")],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "out"
    m = pd.prepare(out, debs_dir=debs, packages=("fake-wallpapers",), val_fraction=0.5)
    assert m["counts"]["candidates"] == 3 and m["counts"]["train"] + m["counts"]["val"] == 2
    assert any("not a JPEG" in e["reason"] for e in m["excluded"])
    for i in m["images"]:
        assert i["package"] == "fake-wallpapers" and i["package_version"] == "1.0-1"
        assert i["licence"]["id"] == "CC-BY-4.0" and "Ann Photographer" in i["licence"]["copyright"]
        assert i["original_path"].startswith("/usr/share/backgrounds/photo")
    assert (out / "licenses" / "fake-wallpapers.copyright").read_text() == COPYRIGHT


def test_copyright_parsing():
    st = pd.parse_copyright(COPYRIGHT)
    assert [s["license"] for s in st] == ["GPL-2+", "CC-BY-4.0"]
    assert pd.licence_for(st, "usr/share/backgrounds/photo9.jpg")["id"] == "CC-BY-4.0"
    assert pd.licence_for(st, "usr/share/backgrounds/other.png")["id"] == "GPL-2+"


def test_missing_packages_give_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(
        pd.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 100, "", "E: offline")
    )
    with pytest.raises(RuntimeError, match=r"no wallpaper \.deb"):
        pd.prepare(tmp_path / "out", debs_dir=tmp_path, packages=("no-such-package",))


def test_cli_rejects_missing_folder(tmp_path):
    from hirqa_ros.cli.main import main

    assert main(["prepare-data", "--folder", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
