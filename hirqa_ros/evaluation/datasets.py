"""Public IQA benchmarks in their authors' folder layouts, and SROCC/PLCC of score_fns on them.

Layouts follow the HiRQA evaluation code (docs/evaluation.md has the table). Every loader
returns a :class:`Benchmark`: items (path, label, reference key) plus ``higher_is_better``.
LIVE and CSIQ labels are DMOS (lower = better): :meth:`Benchmark.oriented_labels` flips their
sign, so a good higher-is-better model gets positive SROCC/PLCC everywhere. KADID-10k's
``dmos`` column is higher-is-better in practice (as the authors and ARNIQA treat it).
"""
from __future__ import annotations

import csv
import logging
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np

from hirqa_ros.batching import batched
from hirqa_ros.evaluation.images import read_rgb
from hirqa_ros.evaluation.metrics import plcc, srocc

LOG = logging.getLogger(__name__)

ScoreFn = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class BenchmarkItem:
    path: Path
    label: float
    key: str  # reference (content) key: distorted images of one reference share it


@dataclass
class Benchmark:
    name: str
    root: Path
    higher_is_better: bool
    items: list[BenchmarkItem] = field(default_factory=list)
    resize: str | None = None  # "fixed:512" (FLIVE) or "short-max:512" (SPAQ), as the authors do

    def keys(self) -> list[str]:
        """Reference keys in first-seen order (for content-disjoint splits)."""
        return list(dict.fromkeys(it.key for it in self.items))

    def oriented_labels(self) -> np.ndarray:
        """Labels with higher = better (DMOS sign flipped)."""
        y = np.array([it.label for it in self.items], dtype=np.float64)
        return y if self.higher_is_better else -y


def _need(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"benchmark file or folder not found: {path}")
    return path


def _loadmat(path: Path) -> dict:
    try:
        import scipy.io
    except ImportError:
        raise ImportError(f"reading {path.name} needs scipy (pip install scipy)") from None
    try:
        return scipy.io.loadmat(str(_need(path)))
    except FileNotFoundError:
        raise
    except Exception as exc:  # scipy raises several kinds for a damaged file
        raise ValueError(f"cannot read {path}: {exc}") from exc


class _CaseInsensitiveDir:
    """Resolve file names inside a folder, falling back to a case-insensitive match."""

    def __init__(self, directory: Path):
        self.dir = directory
        self._lower: dict[str, str] | None = None

    def __call__(self, name: str) -> Path:
        p = self.dir / name
        if p.exists():
            return p
        if self._lower is None:
            self._lower = {q.name.lower(): q.name for q in self.dir.iterdir()} if self.dir.is_dir() else {}
        return self.dir / self._lower.get(name.lower(), name)


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    with open(_need(path), newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {reader.fieldnames}")
        return list(reader)


def load_live(root: str | Path) -> Benchmark:
    """LIVE Release 2: ``dmos_realigned.mat`` (dmos_new, orgs) + 5 folders with ``info.txt``; 779 images."""
    root = Path(root)
    mat = _loadmat(root / "dmos_realigned.mat")
    dmos = np.asarray(mat["dmos_new"], dtype=np.float64).reshape(-1)
    orgs = np.asarray(mat["orgs"]).reshape(-1).astype(bool)
    folders = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
    bench = Benchmark("live", root, higher_is_better=False)
    idx = 0
    for folder, count in folders:
        refs: dict[str, str] = {}
        for line in _need(root / folder / "info.txt").read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                refs[parts[1]] = parts[0]
        for i in range(1, count + 1):
            if idx >= dmos.size:
                raise ValueError(f"{root / 'dmos_realigned.mat'}: dmos_new has {dmos.size} entries, need 982")
            name = f"img{i}.bmp"
            if not orgs[idx] and name in refs:
                bench.items.append(BenchmarkItem(root / folder / name, float(dmos[idx]), refs[name]))
            idx += 1
    return bench


def load_csiq(root: str | Path) -> Benchmark:
    """CSIQ (flattened): ``csiq_label.txt`` lines "name dmos", images in ``dst_imgs_all/``; 866 images."""
    root = Path(root)
    bench = Benchmark("csiq", root, higher_is_better=False)
    for line in _need(root / "csiq_label.txt").read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2:
            name, dmos = parts
            bench.items.append(BenchmarkItem(root / "dst_imgs_all" / name, float(dmos), name.split(".")[0]))
    return bench


def load_tid2013(root: str | Path) -> Benchmark:
    """TID2013: ``mos_with_names.txt`` lines "mos name", images in ``distorted_images/``; 3,000 images."""
    root = Path(root)
    resolve = _CaseInsensitiveDir(root / "distorted_images")
    bench = Benchmark("tid2013", root, higher_is_better=True)
    for line in _need(root / "mos_with_names.txt").read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            name = parts[1]
            bench.items.append(BenchmarkItem(resolve(name), float(parts[0]), name.split("_")[0].lower()))
    return bench


def load_kadid10k(root: str | Path) -> Benchmark:
    """KADID-10k: ``dmos.csv`` (dist_img, ref_img, dmos, var; header skipped), images in ``images/``."""
    root = Path(root)
    bench = Benchmark("kadid10k", root, higher_is_better=True)
    lines = _need(root / "dmos.csv").read_text(errors="replace").splitlines()[1:]
    for line in lines:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0]:
            bench.items.append(BenchmarkItem(root / "images" / parts[0], float(parts[2]), parts[1]))
    return bench


def _mat_strings(cell: np.ndarray) -> list[str]:
    out = []
    for x in np.asarray(cell, dtype=object).reshape(-1):
        while isinstance(x, np.ndarray):
            x = x.reshape(-1)[0] if x.size else ""
        out.append(str(x))
    return out


def load_clive(root: str | Path) -> Benchmark:
    """LIVE Challenge: ``Data/AllImages_release.mat`` + ``Data/AllMOS_release.mat``, images in
    ``Images/Images/`` (or ``Images/``); entries 7..1168 (the 1,162 test images) as the authors do."""
    root = Path(root)
    names = _mat_strings(_loadmat(root / "Data" / "AllImages_release.mat")["AllImages_release"])
    mos = np.asarray(_loadmat(root / "Data" / "AllMOS_release.mat")["AllMOS_release"], np.float64).reshape(-1)
    if len(names) != mos.size:
        raise ValueError(f"CLIVE: {len(names)} image names but {mos.size} MOS values")
    image_dir = root / "Images" / "Images"
    if not image_dir.is_dir() and (root / "Images").is_dir():
        image_dir = root / "Images"
    bench = Benchmark("clive", root, higher_is_better=True)
    for name, score in zip(names[7:1169], mos[7:1169]):
        bench.items.append(BenchmarkItem(image_dir / name, float(score), name))
    return bench


def load_koniq10k(root: str | Path) -> Benchmark:
    """KonIQ-10k: ``koniq10k_scores_and_distributions.csv`` (image_name, MOS_zscore), images
    in ``1024x768/``."""
    root = Path(root)
    rows = _read_csv(root / "koniq10k_scores_and_distributions.csv", ["image_name", "MOS_zscore"])
    bench = Benchmark("koniq10k", root, higher_is_better=True)
    for r in rows:
        name = r["image_name"]
        bench.items.append(BenchmarkItem(root / "1024x768" / name, float(r["MOS_zscore"]), name))
    return bench


def load_flive(root: str | Path) -> Benchmark:
    """FLIVE (PaQ-2-PiQ): ``labels_image.csv`` (name, mos), images under ``database/``; all rows, 512x512."""
    root = Path(root)
    rows = _read_csv(root / "labels_image.csv", ["name", "mos"])
    bench = Benchmark("flive", root, higher_is_better=True, resize="fixed:512")
    for r in rows:
        bench.items.append(BenchmarkItem(root / "database" / r["name"], float(r["mos"]), r["name"]))
    return bench


_XLSX_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def _column_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref.upper())
    n = 0
    for ch in letters.group(0) if letters else "A":
        n = n * 26 + ord(ch) - 64
    return n - 1


def read_xlsx_rows(path: str | Path) -> list[list[object]]:
    """Rows of the first worksheet of an .xlsx (openpyxl when installed, else a minimal zip+XML reader)."""
    path = _need(Path(path))
    try:
        import openpyxl
    except ImportError:
        openpyxl = None
    if openpyxl is not None:
        wb = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
        return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    with zipfile.ZipFile(path) as z:
        shared: list[str] = []
        if "xl/sharedStrings.xml" in z.namelist():
            root = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
            for si in root.findall("m:si", _XLSX_NS):
                shared.append("".join(t.text or "" for t in si.iter(f"{{{_XLSX_NS['m']}}}t")))
        wb = ElementTree.fromstring(z.read("xl/workbook.xml"))
        first = wb.find("m:sheets/m:sheet", _XLSX_NS)
        sheet_path = "xl/worksheets/sheet1.xml"
        if first is not None and "xl/_rels/workbook.xml.rels" in z.namelist():
            rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
            for rel in rels:
                if rel.get("Id") == first.get(_REL_NS):
                    target = rel.get("Target", "")
                    sheet_path = target.lstrip("/") if target.startswith("/") else "xl/" + target
        sheet = ElementTree.fromstring(z.read(sheet_path))
    rows: list[list[object]] = []
    for row in sheet.iter(f"{{{_XLSX_NS['m']}}}row"):
        values: dict[int, object] = {}
        for i, c in enumerate(row.findall("m:c", _XLSX_NS)):
            col = _column_index(c.get("r", "")) if c.get("r") else i
            kind = c.get("t", "n")
            v = c.find("m:v", _XLSX_NS)
            if kind == "inlineStr":
                val: object = "".join(t.text or "" for t in c.iter(f"{{{_XLSX_NS['m']}}}t"))
            elif v is None or v.text is None:
                val = None
            elif kind == "s":
                val = shared[int(v.text)]
            elif kind in ("str", "e"):
                val = v.text
            elif kind == "b":
                val = v.text == "1"
            else:
                val = float(v.text)
            values[col] = val
        width = max(values) + 1 if values else 0
        rows.append([values.get(k) for k in range(width)])
    return rows


def load_spaq(root: str | Path) -> Benchmark:
    """SPAQ: ``Annotations/MOS and Image attribute scores.xlsx`` (Image name, MOS), images
    ``TestImage/*.jpg`` looked up by file name; shorter side capped at 512 as the authors do."""
    root = Path(root)
    rows = read_xlsx_rows(root / "Annotations" / "MOS and Image attribute scores.xlsx")
    if not rows:
        raise ValueError("SPAQ annotation sheet is empty")
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    try:
        ci, cm = header.index("Image name"), header.index("MOS")
    except ValueError:
        raise ValueError(f"SPAQ sheet needs columns 'Image name' and 'MOS'; found {header}") from None
    mos = {str(r[ci]).strip(): float(r[cm]) for r in rows[1:] if len(r) > max(ci, cm) and r[ci] is not None}
    bench = Benchmark("spaq", root, higher_is_better=True, resize="short-max:512")
    for p in sorted(_need(root / "TestImage").glob("*.jpg")):
        if p.name in mos:
            bench.items.append(BenchmarkItem(p, mos[p.name], p.name))
        else:
            LOG.warning("SPAQ: %s has no MOS in the annotation sheet; skipped", p.name)
    return bench


LOADERS: dict[str, Callable[[str | Path], Benchmark]] = {
    "kadid10k": load_kadid10k,
    "csiq": load_csiq,
    "tid2013": load_tid2013,
    "live": load_live,
    "clive": load_clive,
    "koniq10k": load_koniq10k,
    "spaq": load_spaq,
    "flive": load_flive,
}
ALIASES = {
    "kadid": "kadid10k", "kadid-10k": "kadid10k", "tid": "tid2013", "livec": "clive",
    "live-challenge": "clive", "livechallenge": "clive", "koniq": "koniq10k", "koniq-10k": "koniq10k",
    "paq2piq": "flive",
}


def load_benchmark(name: str, root: str | Path) -> Benchmark:
    """Load a benchmark by name (see ``LOADERS``; a few aliases accepted)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in LOADERS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[key](root)


def _prepare(rgb: np.ndarray, resize: str | None) -> np.ndarray:
    if resize is None:
        return rgb
    kind, size = resize.split(":")
    n = int(size)
    h, w = rgb.shape[:2]
    if kind == "fixed":
        return cv2.resize(rgb, (n, n), interpolation=cv2.INTER_AREA if min(h, w) > n else cv2.INTER_CUBIC)
    if kind == "short-max" and min(h, w) > n:
        s = n / min(h, w)
        return cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
    return rgb


def subset(bench: Benchmark, limit: int | None) -> Benchmark:
    """Evenly spaced ``limit`` items (all when None), for quick runs."""
    if not limit or limit >= len(bench.items):
        return bench
    idx = np.linspace(0, len(bench.items) - 1, limit).round().astype(int)
    items = [bench.items[i] for i in idx]
    return Benchmark(bench.name, bench.root, bench.higher_is_better, items, bench.resize)


def evaluate_benchmark(
    score_fns: Mapping[str, ScoreFn], bench: Benchmark, batch_size: int = 16, progress: bool = False
) -> dict:
    """SROCC/PLCC of each score_fn against the oriented labels; unreadable images skipped and counted."""
    labels = bench.oriented_labels()
    kept: list[int] = []
    scores: dict[str, list[float]] = {n: [] for n in score_fns}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(bench.items), desc=bench.name, unit="img", dynamic_ncols=True)

    def readable():
        for i, item in enumerate(bench.items):
            rgb = read_rgb(item.path)
            if bar is not None:
                bar.update(1)
            if rgb is not None:
                kept.append(i)
                yield _prepare(rgb, bench.resize)

    for batch in batched(readable(), batch_size):  # the one batching loop
        for name, fn in score_fns.items():
            res = fn(batch)
            out = np.asarray(res[0] if isinstance(res, tuple) else res, dtype=np.float64).reshape(-1)
            if out.size != len(batch):
                raise ValueError(f"score_fn {name!r} returned {out.size} scores for {len(batch)} images")
            scores[name].extend(out.tolist())
    if bar is not None:
        bar.close()
    skipped = len(bench.items) - len(kept)
    if skipped:
        LOG.warning("%s: %d of %d images unreadable or missing, skipped", bench.name, skipped,
                    len(bench.items))
    y = labels[kept]
    results = {
        name: {"srocc": srocc(s, y), "plcc": plcc(s, y)} if kept else {"srocc": 0.0, "plcc": 0.0}
        for name, s in scores.items()
    }
    return {
        "dataset": bench.name,
        "root": str(bench.root),
        "labels": "MOS (higher = better)" if bench.higher_is_better else "DMOS (sign flipped)",
        "n_images": len(kept),
        "n_skipped": skipped,
        "results": results,
    }


def format_benchmark(report: dict) -> str:
    """A small table of SROCC/PLCC per score_fn."""
    lines = [
        f"{report['dataset']}: {report['n_images']} images ({report['n_skipped']} skipped), "
        f"labels {report['labels']}",
        f"{'':22}{'SROCC':>8}{'PLCC':>8}",
    ]
    for name, r in report["results"].items():
        lines.append(f"{name:22}{r['srocc']:8.3f}{r['plcc']:8.3f}")
    return "\n".join(lines)
