"""Round-3 photo data (training/data/rcc.py, training/data/prepare.py): the Qt resource reader, the photo
rules, the reserved-source check and the fixed hold-out."""

from __future__ import annotations

import glob
import hashlib
import struct
import subprocess
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from hirqa_ros.training.data import prepare
from hirqa_ros.training.data.rcc import COMPRESSED, COMPRESSED_ZSTD, DIRECTORY, RccError, read_rcc

ROOT = Path(__file__).resolve().parents[1]


def write_rcc(path: Path, files: dict[str, bytes], version: int = 3, compress: tuple[str, ...] = ()) -> None:
    """A Qt binary resource file laid out as Qt's rcc.cpp writes it: header, data, names, tree (breadth
    first: a directory's children are consecutive nodes)."""
    tree: dict = {}
    for p, data in files.items():
        node = tree
        *dirs, leaf = p.strip("/").split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = data
    data_blob, names_blob, name_off = bytearray(), bytearray(), {}
    nodes: list = [("", tree)]
    i = 0
    while i < len(nodes):  # breadth first
        if isinstance(nodes[i][1], dict):
            nodes.extend(sorted(nodes[i][1].items()))
        i += 1
    rows, child_index = [], {}
    idx = 1
    for _, n in nodes:
        if isinstance(n, dict):
            child_index[id(n)] = idx
            idx += len(n)
    node_size = 14 if version == 1 else 22
    for k, (name, n) in enumerate(nodes):
        if name not in name_off and k:
            name_off[name] = len(names_blob)
            enc = name.encode("utf-16-be")
            names_blob += struct.pack(">HI", len(name), 0) + enc
        noff = name_off.get(name, 0)
        if isinstance(n, dict):
            row = struct.pack(">IHII", noff, DIRECTORY, len(n), child_index[id(n)])
        else:
            flags, payload = 0, n
            if name in compress:
                flags, payload = COMPRESSED, struct.pack(">I", len(n)) + zlib.compress(n)
            row = struct.pack(">IHHHI", noff, flags, 0, 0, len(data_blob))
            data_blob += struct.pack(">I", len(payload)) + payload
        if version >= 2:
            row += struct.pack(">Q", 0)
        assert len(row) == node_size
        rows.append(row)
    head = 24 if version >= 3 else 20
    data_off, names_off = head, head + len(data_blob)
    tree_off = names_off + len(names_blob)
    hdr = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        hdr += struct.pack(">I", 0)
    path.write_bytes(hdr + bytes(data_blob) + bytes(names_blob) + b"".join(rows))


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reader_lists_every_file_with_its_bytes(tmp_path, version):
    files = {"/app/src/a/photo.webp": b"RIFF1234WEBPVP8 " + bytes(range(256)) * 4,
             "/app/src/a/b/deep.txt": b"hello " * 50, "/app/top.json": b"{}"}
    f = tmp_path / "x.rcc"
    write_rcc(f, files, version, compress=("deep.txt",))
    got = {e.path: e for e in read_rcc(f)}
    assert {p: e.data for p, e in got.items()} == files
    assert got["/app/src/a/b/deep.txt"].compression == "zlib" and got["/app/top.json"].compression == "none"


def test_rcc_reader_refuses_bad_input(tmp_path):
    bad = tmp_path / "bad.rcc"
    bad.write_bytes(b"PK\x03\x04 not a resource file at all")
    with pytest.raises(RccError, match="qres"):
        read_rcc(bad)
    good = tmp_path / "good.rcc"
    write_rcc(good, {"/a/b.txt": b"x" * 100})
    raw = good.read_bytes()
    (tmp_path / "cut.rcc").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RccError):
        read_rcc(tmp_path / "cut.rcc")
    (tmp_path / "v9.rcc").write_bytes(b"qres" + struct.pack(">IIII", 9, 30, 24, 28) + b"\0" * 40)
    with pytest.raises(RccError, match="version 9"):
        read_rcc(tmp_path / "v9.rcc")


def test_rcc_zstd_entry_needs_zstandard_or_inflates(tmp_path):
    f = tmp_path / "z.rcc"
    write_rcc(f, {"/a/z.bin": b"payload"})
    raw = bytearray(f.read_bytes())
    tree = struct.unpack_from(">I", raw, 8)[0]
    # node 2 (root, dir "a", file): set the zstd flag on the file
    struct.pack_into(">H", raw, tree + 2 * 22 + 4, COMPRESSED_ZSTD)
    f.write_bytes(bytes(raw))
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError):
            read_rcc(f)
    else:  # not a zstd frame: zstandard says so
        with pytest.raises(Exception):  # noqa: B017
            read_rcc(f)


DEB = sorted(glob.glob(str(ROOT / "data/debs_cache/gcompris-qt-data_*.deb")))


@pytest.mark.slow
@pytest.mark.skipif(not DEB, reason="gcompris-qt-data .deb not in data/debs_cache "
                                    "(hirqa prepare-data --round3 fetches it)")
def test_rcc_reader_on_gcompris_resources(tmp_path):
    subprocess.run(["dpkg", "-x", DEB[-1], str(tmp_path)], check=True)
    rcc = tmp_path / "usr/share/gcompris-qt/rcc/explore_monuments.rcc"
    entries = read_rcc(rcc)
    webps = [e for e in entries if e.path.endswith(".webp")]
    assert webps and all(e.path.startswith("/gcompris/src/activities/") for e in entries)
    img = cv2.imdecode(np.frombuffer(webps[0].data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and min(img.shape[:2]) > 100


def test_reserved_sources_are_refused(tmp_path):
    for pkg in ("opencv-doc", "python3-skimage", "scikit-image"):
        with pytest.raises(RuntimeError, match="reserved"):
            prepare.check_not_reserved((pkg,))
    folder = tmp_path / "skimage" / "data"
    folder.mkdir(parents=True)
    with pytest.raises(RuntimeError, match="reserved"):
        prepare.prepare(tmp_path / "out", folder=folder)
    prepare.check_not_reserved(prepare.DEFAULT_PACKAGES + prepare.ROUND3_PACKAGES)  # the real sources pass


def test_photo_rules(tmp_path):
    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 1.0)
    graphic = np.zeros((300, 400, 3), np.uint8)
    graphic[:, 200:] = (200, 40, 40)
    assert prepare.colour_count(photo) >= prepare.MIN_COLOURS > prepare.colour_count(graphic)
    cv2.imwrite(str(tmp_path / "lossy.webp"), photo, [cv2.IMWRITE_WEBP_QUALITY, 80])
    cv2.imwrite(str(tmp_path / "lossless.webp"), graphic, [cv2.IMWRITE_WEBP_QUALITY, 101])
    rgba = np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])
    cv2.imwrite(str(tmp_path / "alpha.webp"), rgba, [cv2.IMWRITE_WEBP_QUALITY, 80])
    assert b"ALPH" in (tmp_path / "alpha.webp").read_bytes()
    assert not prepare.is_lossless_webp(tmp_path / "lossy.webp")
    assert prepare.is_lossless_webp(tmp_path / "lossless.webp")
    assert prepare.is_lossless_webp(tmp_path / "alpha.webp")  # a cut-out
    c = prepare.Candidate(tmp_path / "lossless.webp", "/x/lossless.webp", "lxqt-themes", "1")
    c.rgb = graphic
    assert "WebP" in prepare.photo_verdict(c, from_debs=True, keep_all=False)
    c = prepare.Candidate(tmp_path / "lossy.webp", "/x/lossy.webp", "lxqt-themes", "1")
    c.rgb = photo
    assert prepare.photo_verdict(c, from_debs=True, keep_all=False) == ""


def test_fixed_hold_out_keeps_the_wallpaper_split():
    rng = np.random.default_rng(0)

    def cand(pkg, path):
        c = prepare.Candidate(Path(path), path, pkg, "1")
        c.phash = int(rng.integers(0, 2**63))  # unrelated contents (~32 bits apart)
        return c

    legacy = [cand("mate-backgrounds", f"/w/{i}.jpg") for i in range(10)]
    new = [cand("darknet", f"/d/{i}.jpg") for i in range(200)]
    old_groups = prepare._content_groups(legacy)
    old = {g[0].original_path: sp for gi, g in enumerate(old_groups)
           for sp in [prepare._split(old_groups, 0.2, "hirqa")[gi]]}
    groups = prepare._content_groups(legacy + new)
    both = prepare._split_by_name(groups, 0.15, "hirqa")
    got = {g[0].original_path: both[gi] for gi, g in enumerate(groups)}
    assert "val" in old.values() and {p: got[p] for p in old} == old  # the evaluation's photos stay out
    share = sum(sp == "val" for p, sp in got.items() if p.startswith("/d/")) / 200
    assert 0.08 < share < 0.22
    assert both == prepare._split_by_name(groups, 0.15, "hirqa")  # deterministic


def test_prepare_writes_checksums_and_the_split_rule(tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(6):
        img = cv2.GaussianBlur(rng.integers(0, 256, (300, 320, 3), dtype=np.uint8), (0, 0), 1.5 + i)
        cv2.imwrite(str(src / f"p{i}.jpg"), img)
    m = prepare.prepare(tmp_path / "out", folder=src, keep_all=True, split_rule="name", val_fraction=0.15)
    assert m["policy"]["split"] == "name" and m["counts"]["train"] + m["counts"]["val"] >= 1
    for entry in m["images"]:
        data = (tmp_path / "out" / entry["file"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    with pytest.raises(ValueError, match="split_rule"):
        prepare.prepare(tmp_path / "out2", folder=src, split_rule="random")
