"""Benchmark loaders on tiny fixtures written in each dataset's authors' layout; DMOS direction; scoring."""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from hirqa_ros.evaluation.datasets import (
    evaluate_benchmark,
    format_benchmark,
    load_benchmark,
    read_xlsx_rows,
    subset,
)

sio = pytest.importorskip("scipy.io", reason="the .mat fixtures are written with scipy.io.savemat")


def _img(path: Path, value: float, size: tuple[int, int] = (12, 16)) -> None:
    """A flat grey image whose brightness encodes its quality (brighter = better)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*size, 3), round(value), np.uint8))


def mean_brightness(frames):
    return np.array([f.mean() for f in frames])


def test_live_layout_and_dmos_direction(tmp_path):
    folders = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
    dmos = np.zeros((1, 982))
    orgs = np.zeros((1, 982))
    offset, expected = 0, []
    for k, (folder, count) in enumerate(folders):
        lines = []
        for i in (1, 2, 3):  # three images listed per folder; img3 of each folder is a reference duplicate
            name = f"img{i}.bmp"
            d = 10.0 * k + i
            dmos[0, offset + i - 1] = d
            if i == 3:
                orgs[0, offset + i - 1] = 1
            else:
                expected.append((folder, name, d, f"ref{i}.bmp"))
            lines.append(f"ref{i}.bmp {name} 0.5")
            _img(tmp_path / folder / name, 255 - 4 * d)  # higher DMOS = worse = darker
        (tmp_path / folder / "info.txt").write_text("\n".join(lines) + "\n\n")
        offset += count
    sio.savemat(tmp_path / "dmos_realigned.mat", {"dmos_new": dmos, "orgs": orgs})
    b = load_benchmark("live", tmp_path)
    assert not b.higher_is_better and len(b.items) == 10
    assert [(it.path.parent.name, it.path.name, it.label, it.key) for it in b.items] == expected
    assert b.keys() == ["ref1.bmp", "ref2.bmp"]
    np.testing.assert_allclose(b.oriented_labels(), [-e[2] for e in expected])
    rep = evaluate_benchmark({"bright": mean_brightness}, b)
    assert rep["n_images"] == 10 and rep["results"]["bright"]["srocc"] == pytest.approx(1.0)
    assert rep["results"]["bright"]["plcc"] == pytest.approx(1.0)


def test_csiq_layout_dmos_direction_and_skips(tmp_path):
    rows = [("1600.AWGN.1.png", 0.1), ("1600.BLUR.5.png", 0.8), ("aerial_city.JPEG.3.png", 0.4),
            ("child_swimming.fnoise.2.png", 0.25)]
    lines = [f"{n} {d}" for n, d in rows] + ["malformed line with many fields", ""]
    (tmp_path / "csiq_label.txt").write_text("\n".join(lines))
    for n, d in rows[:-1]:
        _img(tmp_path / "dst_imgs_all" / n, 230 - 200 * d)
    (tmp_path / "dst_imgs_all" / rows[-1][0]).write_bytes(b"corrupt")
    b = load_benchmark("CSIQ", tmp_path)
    assert not b.higher_is_better and len(b.items) == 4
    assert b.keys() == ["1600", "aerial_city", "child_swimming"]
    rep = evaluate_benchmark({"bright": mean_brightness, "dark": lambda f: -mean_brightness(f)}, b)
    assert rep["n_images"] == 3 and rep["n_skipped"] == 1  # the corrupt file is reported and skipped
    assert rep["results"]["bright"]["srocc"] == pytest.approx(1.0)  # DMOS inverted: positive for a good score
    assert rep["results"]["dark"]["srocc"] == pytest.approx(-1.0)
    assert "csiq" in format_benchmark(rep) and "DMOS" in rep["labels"]


def test_tid2013_layout_case_insensitive_names(tmp_path):
    (tmp_path / "mos_with_names.txt").write_text("5.5 i01_01_1.bmp\n2.25 I01_01_5.bmp\n4.0 i25_24_2.bmp\n")
    _img(tmp_path / "distorted_images" / "i01_01_1.bmp", 200)
    _img(tmp_path / "distorted_images" / "i01_01_5.BMP", 60)  # on-disk case differs from the label file
    _img(tmp_path / "distorted_images" / "i25_24_2.bmp", 150)
    b = load_benchmark("tid2013", tmp_path)
    assert b.higher_is_better and [it.key for it in b.items] == ["i01", "i01", "i25"]
    assert [it.label for it in b.items] == [5.5, 2.25, 4.0]
    assert b.items[1].path.name == "i01_01_5.BMP"
    rep = evaluate_benchmark({"bright": mean_brightness}, b)
    assert rep["n_skipped"] == 0 and rep["results"]["bright"]["srocc"] == pytest.approx(1.0)


def test_kadid10k_layout(tmp_path):
    (tmp_path / "dmos.csv").write_text(
        "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.496\nI01_01_05.png,I01.png,2.1,0.9\n"
        "I02_19_03.png,I02.png,3.3,0.7\n"
    )
    b = load_benchmark("kadid", tmp_path)
    assert b.name == "kadid10k" and b.higher_is_better  # the 'dmos' column is higher-is-better
    assert [(it.path.name, it.key, it.label) for it in b.items] == [
        ("I01_01_01.png", "I01.png", 4.57), ("I01_01_05.png", "I01.png", 2.1),
        ("I02_19_03.png", "I02.png", 3.3)]
    assert b.items[0].path == tmp_path / "images" / "I01_01_01.png"
    assert b.keys() == ["I01.png", "I02.png"]


@pytest.mark.parametrize("nested", [True, False])
def test_clive_layout_drops_seven_training_images(tmp_path, nested):
    names = [f"t{i}.bmp" for i in range(7)] + ["10.bmp", "100.bmp", "1000.JPG"]
    mos = np.array([[50.0] * 7 + [63.5, 20.0, 41.2]])
    cell = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        cell[i, 0] = np.array([n])
    (tmp_path / "Data").mkdir()
    sio.savemat(tmp_path / "Data" / "AllImages_release.mat", {"AllImages_release": cell})
    sio.savemat(tmp_path / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos})
    image_dir = tmp_path / "Images" / "Images" if nested else tmp_path / "Images"
    image_dir.mkdir(parents=True)
    b = load_benchmark("clive", tmp_path)
    assert [(it.key, it.label) for it in b.items] == [("10.bmp", 63.5), ("100.bmp", 20.0), ("1000.JPG", 41.2)]
    assert all(it.path.parent == image_dir for it in b.items) and b.higher_is_better


def test_koniq10k_uses_mos_zscore(tmp_path):
    (tmp_path / "koniq10k_scores_and_distributions.csv").write_text(
        '"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"\n'
        '"10004473376.jpg",0,0,25,73,7,105,3.828571,0.527,77.383\n'
        '"10007357496.jpg",0,3,45,47,1,96,3.479167,0.5979,68.078\n'
    )
    b = load_benchmark("koniq10k", tmp_path)
    assert [(it.key, it.label) for it in b.items] == [
        ("10004473376.jpg", 77.383), ("10007357496.jpg", 68.078)]
    assert b.items[0].path == tmp_path / "1024x768" / "10004473376.jpg"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "koniq10k_scores_and_distributions.csv").write_text("image_name,MOS\nx.jpg,3\n")
    with pytest.raises(ValueError, match="MOS_zscore"):
        load_benchmark("koniq", tmp_path / "bad")


def test_flive_layout_and_fixed_resize(tmp_path):
    (tmp_path / "labels_image.csv").write_text(
        "name,mos,height,width,is_valid\nblur_dataset/out1.jpg,60.5,30,40,True\nEE371R/a.jpg,72.0,50,20,True\n"
    )
    _img(tmp_path / "database" / "blur_dataset" / "out1.jpg", 100, (30, 40))
    _img(tmp_path / "database" / "EE371R" / "a.jpg", 180, (50, 20))
    b = load_benchmark("flive", tmp_path)
    assert [it.key for it in b.items] == ["blur_dataset/out1.jpg", "EE371R/a.jpg"] and b.resize == "fixed:512"
    shapes = []
    rep = evaluate_benchmark({"shape": lambda f: shapes.extend(x.shape for x in f) or mean_brightness(f)}, b)
    assert shapes == [(512, 512, 3), (512, 512, 3)] and rep["results"]["shape"]["srocc"] == pytest.approx(1.0)


_OOXML = "http://schemas.openxmlformats.org"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_REL = f"{_OOXML}/officeDocument/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8"?>'


def _write_xlsx(path: Path, rows: list[list[object]]) -> None:
    """A minimal valid .xlsx (shared strings for text, numbers inline), as Excel stores it."""
    strings: list[str] = []
    sheet_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, v in enumerate(row):
            ref = f"{chr(65 + c)}{r}"
            if isinstance(v, str):
                strings.append(v)
                cells.append(f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>')
            else:
                cells.append(f'<c r="{ref}"><v>{v}</v></c>')
        sheet_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
    ns = f'xmlns="{_OOXML}/spreadsheetml/2006/main"'
    rels = f'xmlns="{_OOXML}/package/2006/relationships"'
    n = len(strings)
    files = {
        "[Content_Types].xml": (
            f'{_XML}<Types xmlns="{_OOXML}/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/></Types>'),
        "_rels/.rels": (
            f'{_XML}<Relationships {rels}><Relationship Id="rId1" Type="{_REL}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'{_XML}<workbook {ns} xmlns:r="{_REL}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'{_XML}<Relationships {rels}>'
            f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"),
        "xl/worksheets/sheet1.xml": (
            f'{_XML}<worksheet {ns}><sheetData>{"".join(sheet_rows)}</sheetData></worksheet>'),
        "xl/sharedStrings.xml": (
            f'{_XML}<sst {ns} count="{n}" uniqueCount="{n}">'
            + "".join(f"<si><t>{s}</t></si>" for s in strings) + "</sst>"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)


@pytest.mark.parametrize("force_fallback", [True, False])
def test_spaq_layout_xlsx_and_short_side_cap(tmp_path, monkeypatch, force_fallback):
    if force_fallback:
        monkeypatch.setitem(sys.modules, "openpyxl", None)  # import fails: the zip+XML reader is used
    else:
        pytest.importorskip("openpyxl", reason="openpyxl not installed; the built-in reader is tested")
    rows = [["Image name", "MOS", "Brightness"], ["00001.jpg", 42.5, 50], ["00002.jpg", 81.25, 60],
            ["00003.jpg", 10.0, 70]]
    _write_xlsx(tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx", rows)
    assert read_xlsx_rows(tmp_path / "Annotations" / "MOS and Image attribute scores.xlsx") == [
        ["Image name", "MOS", "Brightness"], ["00001.jpg", 42.5, 50.0], ["00002.jpg", 81.25, 60.0],
        ["00003.jpg", 10.0, 70.0]]
    _img(tmp_path / "TestImage" / "00001.jpg", 100, (600, 800))
    _img(tmp_path / "TestImage" / "00002.jpg", 200, (300, 200))
    _img(tmp_path / "TestImage" / "99999.jpg", 50)  # not in the sheet: reported and skipped
    (tmp_path / "TestImage" / "notes.txt").write_text("ignored")
    b = load_benchmark("spaq", tmp_path)
    assert [(it.key, it.label) for it in b.items] == [("00001.jpg", 42.5), ("00002.jpg", 81.25)]
    shapes = []
    rep = evaluate_benchmark({"shape": lambda f: shapes.extend(x.shape for x in f) or mean_brightness(f)}, b)
    assert shapes == [(512, 683, 3), (300, 200, 3)] and rep["n_images"] == 2


def test_unknown_dataset_missing_files_and_subset(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("imagenet", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"csiq_label\.txt"):
        load_benchmark("csiq", tmp_path)
    (tmp_path / "csiq_label.txt").write_text("\n".join(f"{i}.x.png {i / 10}" for i in range(10)))
    b = subset(load_benchmark("csiq", tmp_path), 3)
    assert [it.key for it in b.items] == ["0", "4", "9"]
    (tmp_path / "dmos_realigned.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="cannot read"):
        load_benchmark("live", tmp_path)
