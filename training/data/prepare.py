"""Build the pristine photo set: Debian wallpaper packages, the round-3 photo packages (or any folder) ->
photos only, deduplicated, <= 1600 px JPEGs in ``train/`` and ``val/`` (content-disjoint) plus
``manifest.json`` with provenance, licences and checksums.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hirqa_ros.files import read_image
from hirqa_ros.training.data.rcc import RccError, read_rcc

log = logging.getLogger(__name__)

# Debian packages whose wallpapers include photographs (DESIGN.md, data policy).
DEFAULT_PACKAGES = (
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "ukui-wallpapers",
    "lomiri-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
)
# Round 3 (issue 25): camera photos in other Debian packages, and where each keeps them (globs inside the
# package; an .rcc file is opened and its images listed).
ROUND3_PACKAGES = ("gcompris-qt-data", "lxqt-themes", "palapeli-data", "darknet")
SOURCE_GLOBS = {
    "gcompris-qt-data": ("usr/share/gcompris-qt/rcc/*.rcc",),
    "lxqt-themes": ("usr/share/lxqt/wallpapers/*",),
    "palapeli-data": ("usr/share/palapeli/collection/*",),
    "darknet": ("usr/share/darknet/data/*.jpg",),
}
# lossy WebP at screen size: shrunk by this factor (area) before use, so codec artefacts shrink below a pixel
PRE_DOWNSCALE = {"gcompris-qt-data": 2}
ROUND3_VAL_FRACTION = 0.15
# reserved for independent evaluation (OpenCV's and scikit-image's sample images): never training data
RESERVED_PATTERNS = ("opencv", "skimage", "scikit-image")
# the photo formats wallpaper packages ship (a subset of files.IMAGE_EXTS: no icons, no HDR)
PHOTO_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MAX_SIDE = 1600
MIN_SIDE = 256
FLAT_MAX = 0.30  # photos keep sensor noise/texture: < 30 % of pixels with |Laplacian| < 1 at 512 px
MIN_COLOURS = 200  # photos: >= 200 distinct colours (5 bits per channel) in a 64 x 64 thumbnail
DUP_BITS = 6  # pHash Hamming distance for "the same image at another resolution"
GROUP_BITS = 14  # looser distance: near-identical content (variants) stays in one split

# Wallpaper JPEGs that pass the statistics test but are renders, paintings or graphics
# (checked by eye on a contact sheet of every candidate; path substrings, relative to the package root).
EXCLUDE = (
    "analogpattern_by_Peter_Nerlich",  # grain texture, no scene
    "Infinite-Sea_by_Aury88",  # composite / gradient art
    "Painting-Colors_by",  # graphic
    "Fossa_by_Jasper_Roks",  # graphic
    "umang_by_Abhishek_Mudgal",  # gradient art
    "abstract/Elephants",  # painting
    "desktop/",  # mate desktop graphics
    "wallpapers/Autumn/",  # digital painting
    "wallpapers/Flow/",
    "wallpapers/Honeywave/",
    "wallpapers/PastelHills/",
    "wallpapers/SafeLanding/",
    "wallpapers/Shell/",
    "wallpapers/Volna/",  # 3-D render
    "ukui-wallpapers/",  # all ukui wallpapers are graphics
    # round 3: the contact sheet of all 121 candidates that passed the statistics, reviewed by eye
    "darknet/data/scream.jpg",  # Munch's painting
    "lxqt/wallpapers/kde-plasma.png",  # geometric graphic
    # round 3 (contact sheet of every candidate that passed the statistics, reviewed by eye)
)


@dataclass
class Candidate:
    path: Path  # the file read
    original_path: str  # path inside the package (or relative to the folder)
    package: str
    version: str
    rgb: np.ndarray | None = None
    phash: int = 0
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- sources


def fetch_debs(packages: tuple[str, ...], cache: Path, debs_dir: Path | None) -> list[Path]:
    """The .deb of each package: from ``debs_dir`` when there, else ``apt-get download`` into ``cache``."""
    found = []
    cache.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        hits = []
        for d in [x for x in (debs_dir, cache) if x is not None]:
            hits += sorted(Path(d).glob(f"{pkg}_*.deb"))
        if not hits:
            log.info("%s: not in %s, running apt-get download into %s", pkg, debs_dir, cache)
            r = subprocess.run(["apt-get", "download", pkg], cwd=cache, capture_output=True, text=True)
            if r.returncode != 0:
                log.warning("%s: apt-get download failed (%s); skipped", pkg, r.stderr.strip()[-300:])
                continue
            hits = sorted(cache.glob(f"{pkg}_*.deb"))
        if hits:
            found.append(hits[-1])
    return found


def _deb_name_version(deb: Path) -> tuple[str, str]:
    name, _, rest = deb.stem.partition("_")
    version = rest.rsplit("_", 1)[0].replace("%3a", ":")
    return name, version


def parse_copyright(text: str) -> list[dict]:
    """Stanzas of a DEP-5 copyright file: [{files: [...], copyright, license}] (licence texts dropped)."""
    stanzas, cur, key = [], {}, None
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if cur.get("files"):
                stanzas.append(cur)
            cur, key = {}, None
            continue
        m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
        if m and not line.startswith((" ", "\t")):
            key = m.group(1).lower()
            val = m.group(2).strip()
            if key == "files":
                cur["files"] = val.split()
            elif key in ("copyright", "license"):
                cur[key] = val
        elif key == "files":
            cur["files"] += line.split()
        elif key == "copyright":
            cur["copyright"] += "; " + line.strip()
    return stanzas


def licence_for(stanzas: list[dict], original_path: str) -> dict:
    """Last matching stanza wins (DEP-5); a pattern matches on the full path or on its tail."""
    best = {}
    for st in stanzas:
        for pat in st["files"]:
            tail = "/".join(Path(original_path).parts[-len(Path(pat).parts) :])
            base_ok = "/" in pat and "*" not in pat and Path(pat).name == Path(original_path).name
            if fnmatch.fnmatch(original_path, pat) or fnmatch.fnmatch(tail, pat) or base_ok:
                best = {"id": st.get("license", "unknown"), "copyright": st.get("copyright", "")}
    return best or {"id": "unknown", "copyright": ""}


def _plasma_metadata(path: Path) -> dict:
    """Upstream author/licence of a KDE wallpaper (``<name>/metadata.json`` above ``contents/``)."""
    for parent in path.parents:
        meta = parent / "metadata.json"
        if meta.is_file():
            try:
                kp = json.loads(meta.read_text()).get("KPlugin", {})
                authors = kp.get("Authors") or [{}]
                return {"upstream_license": kp.get("License", ""), "author": authors[0].get("Name", "")}
            except (ValueError, OSError):
                return {}
        if parent.name == "wallpapers":
            break
    return {}


def check_not_reserved(packages: tuple[str, ...] = (), folder: Path | None = None) -> None:
    """Refuse the sources reserved for independent evaluation (RuntimeError naming the source)."""
    names = [*packages, *([str(Path(folder).resolve())] if folder is not None else [])]
    for name in names:
        hit = next((r for r in RESERVED_PATTERNS if r in name.lower()), None)
        if hit:
            raise RuntimeError(f"{name}: {hit!r} sample images are reserved for independent evaluation, "
                               "never training data (docs/training.md)")


def _package_files(root: Path, pkg: str) -> list[Path]:
    """The image (and .rcc) files of an extracted package: its ``SOURCE_GLOBS``, else every file."""
    if pkg in SOURCE_GLOBS:
        return sorted({p for pat in SOURCE_GLOBS[pkg] for p in root.glob(pat)})
    return sorted(root.rglob("*"))


def _rcc_candidates(rcc: Path, rel: str, pkg: str, version: str, stanzas: list[dict],
                    workdir: Path) -> list[Candidate]:
    """The images inside a Qt resource file, written to ``workdir`` to be read like any file."""
    try:
        entries = read_rcc(rcc)
    except (RccError, OSError, ImportError) as exc:
        log.warning("%s: cannot read %s: %s", pkg, rel, exc)
        return []
    out = []
    for e in entries:
        if Path(e.path).suffix.lower() not in PHOTO_EXTS:
            continue
        dst = workdir / f"{pkg}_rcc" / Path(rel).stem / e.path.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(e.data)
        c = Candidate(dst, f"/{rel}:{e.path}", pkg, version)
        inner = e.path.lstrip("/").split("/", 1)[-1]  # "gcompris/src/..." -> "src/...", as in the sources
        c.info["licence"] = {**licence_for(stanzas, inner), "file": f"licenses/{pkg}.copyright"}
        c.info["original_sha256"] = hashlib.sha256(e.data).hexdigest()
        out.append(c)
    return out


def candidates_from_debs(debs: list[Path], workdir: Path, licences_out: Path) -> list[Candidate]:
    """Extract each .deb with ``dpkg -x`` and list its image files (symlinked duplicates once)."""
    out = []
    for deb in debs:
        pkg, version = _deb_name_version(deb)
        check_not_reserved((pkg,))
        root = workdir / pkg
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
        stanzas = []
        cfile = root / "usr/share/doc" / pkg / "copyright"
        if cfile.is_file():
            text = cfile.read_text(errors="replace")
            stanzas = parse_copyright(text)
            licences_out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cfile, licences_out / f"{pkg}.copyright")
        seen = set()
        for p in _package_files(root, pkg):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and p.suffix == ".rcc":
                out += _rcc_candidates(p, rel, pkg, version, stanzas, workdir)
                continue
            if (
                not p.is_file()
                or p.suffix.lower() not in PHOTO_EXTS
                or "/doc/" in rel
                or "screenshot" in p.name.lower()
            ):
                continue
            real = p.resolve()
            if real in seen:
                continue
            seen.add(real)
            c = Candidate(real, "/" + rel, pkg, version)
            c.info["licence"] = licence_for(stanzas, rel)
            c.info["licence"]["file"] = f"licenses/{pkg}.copyright"
            c.info.update(_plasma_metadata(p))
            if pkg in ROUND3_PACKAGES:
                c.info["original_sha256"] = hashlib.sha256(real.read_bytes()).hexdigest()
                notice = p.parent / "License"  # lxqt-themes: the wallpapers' own licence notice
                if notice.is_file():
                    c.info["upstream_notice"] = " ".join(notice.read_text(errors="replace").split())[:300]
            out.append(c)
    return out


def candidates_from_folder(folder: Path) -> list[Candidate]:
    return [
        Candidate(
            p,
            p.relative_to(folder).as_posix(),
            "folder:" + folder.name,
            "",
            info={"licence": {"id": "as distributed with the folder", "copyright": ""}},
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix.lower() in PHOTO_EXTS
    ]


# ----------------------------------------------------------------------------- filters


def read_rgb(path: Path) -> np.ndarray | None:
    """HxWx3 uint8 RGB of an image file (``files.read_image``), None when it cannot be decoded."""
    try:
        return read_image(path)
    except ValueError:
        return None


def flat_fraction(rgb: np.ndarray) -> float:
    """Share of pixels with |Laplacian| < 1 at 512 px: high for vector art and smooth gradients."""
    h, w = rgb.shape[:2]
    f = 512 / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float((np.abs(cv2.Laplacian(grey, cv2.CV_32F)) < 1.0).mean())


def colour_count(rgb: np.ndarray) -> int:
    """Distinct colours (5 bits per channel) of a 64 x 64 thumbnail: few for flat-shaded graphics."""
    small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA) >> 3
    return len(np.unique(small.reshape(-1, 3).astype(np.int32) @ np.array([1024, 32, 1])))


def is_lossless_webp(path: Path) -> bool:
    """A WebP coded losslessly (a ``VP8L`` chunk) or with an alpha channel (``ALPH``): graphics and
    cut-outs; photos are lossy ``VP8`` without alpha (with or without ICC/EXIF/XMP metadata)."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"RIFF" or buf[8:12] != b"WEBP":
        return False
    at, kinds = 12, set()
    while at + 8 <= len(buf):
        n = struct.unpack_from("<I", buf, at + 4)[0]
        kinds.add(buf[at : at + 4])
        at += 8 + n + (n & 1)
    return bool(kinds & {b"VP8L", b"ALPH"})


def is_jpeg(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(3) == b"\xff\xd8\xff"


def phash(rgb: np.ndarray) -> int:
    """64-bit DCT perceptual hash (resolution independent)."""
    grey = cv2.cvtColor(cv2.resize(rgb, (32, 32), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    d = cv2.dct(grey.astype(np.float32))[:8, :8].flatten()
    bits = d > np.median(d[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def photo_verdict(c: Candidate, from_debs: bool, keep_all: bool) -> str:
    """'' to keep, otherwise the reason for dropping the candidate."""
    if c.rgb is None:
        return "unreadable"
    if min(c.rgb.shape[:2]) < MIN_SIDE:
        return f"smaller than {MIN_SIDE} px"
    if keep_all:
        return ""
    key = f"{c.package}{c.original_path}"
    for pat in EXCLUDE:
        if pat in key:
            return f"manual exclude list ({pat})"
    if from_debs and c.package not in ROUND3_PACKAGES and not is_jpeg(c.path):
        return "not a JPEG (wallpaper graphics ship as PNG)"
    if c.path.suffix.lower() == ".webp" and is_lossless_webp(c.path):
        return "lossless or alpha WebP (graphics)"
    ff = flat_fraction(c.rgb)
    c.info["flat_fraction"] = round(ff, 3)
    if ff > FLAT_MAX:
        return f"flat fraction {ff:.2f} > {FLAT_MAX} (graphic / gradient art)"
    if c.package in ROUND3_PACKAGES:
        nc = colour_count(c.rgb)
        c.info["colours"] = nc
        if nc < MIN_COLOURS:
            return f"{nc} colours < {MIN_COLOURS} (flat-shaded graphic)"
    return ""


def _split(groups: list[list[Candidate]], val_fraction: float, seed: str) -> dict[int, str]:
    """Deterministic content-disjoint split: every 1/val_fraction-th group per package goes to val."""
    by_pkg: dict[str, list[int]] = {}
    for gi, g in enumerate(groups):
        by_pkg.setdefault(g[0].package, []).append(gi)
    out, period, counter = {}, max(2, round(1 / val_fraction)), 0
    for pkg in sorted(by_pkg):
        order = sorted(
            by_pkg[pkg],
            key=lambda gi: hashlib.sha1((seed + groups[gi][0].original_path).encode()).hexdigest(),
        )
        for gi in order:
            out[gi] = "val" if counter % period == period // 2 else "train"
            counter += 1
    return out


def _split_by_name(groups: list[list[Candidate]], val_fraction: float, seed: str) -> dict[int, str]:
    """Round 3's fixed hold-out: the legacy wallpaper photos keep their split (:func:`_split` on them
    alone, so the evaluation's held-out photos stay held out); every other content group goes to val
    when a hash of its first photo's package and path falls in the first ``val_fraction`` of the range."""
    legacy = [c for g in groups for c in g if c.package not in ROUND3_PACKAGES]
    legacy_groups = _content_groups(legacy)  # exactly as a wallpaper-only run groups them
    legacy_split = _split(legacy_groups, 0.2, seed) if len(legacy_groups) > 1 else {}
    by_path = {c.original_path: legacy_split.get(i, "train") for i, g in enumerate(legacy_groups) for c in g}
    out = {}
    for gi, g in enumerate(groups):
        old = [by_path[c.original_path] for c in g if c.original_path in by_path]
        if old:
            out[gi] = "val" if "val" in old else "train"
            continue
        key = hashlib.sha1(f"{seed}:{g[0].package}:{g[0].original_path}".encode()).hexdigest()
        out[gi] = "val" if int(key[:8], 16) / 16**8 < val_fraction else "train"
    return out


def _out_name(c: Candidate, used: set[str]) -> str:
    stem = Path(c.original_path).stem
    parent = Path(c.original_path).parent
    if re.fullmatch(r"\d+x\d+", stem):  # KDE names files by resolution: use the wallpaper's name
        stem = next(
            (p for p in reversed(parent.parts) if p not in ("images", "images_dark", "contents")), stem
        )
    pkg = c.package.replace("folder:", "")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{pkg}__{stem}")[:120]
    base, k = name, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name + ".jpg"


# ----------------------------------------------------------------------------- main entry


def _filter(cands: list[Candidate], from_debs: bool, keep_all: bool) -> tuple[list[Candidate], list[dict]]:
    """(photos kept, with their pHash; excluded candidates with the reason)."""
    from tqdm import tqdm

    excluded, kept = [], []
    for c in tqdm(cands, desc="filter", unit="img"):
        try:
            c.rgb = read_rgb(c.path)
        except OSError as exc:
            log.warning("cannot read %s: %s", c.path, exc)
        f = PRE_DOWNSCALE.get(c.package, 1)
        if c.rgb is not None and f > 1:
            h, w = c.rgb.shape[:2]
            c.rgb = cv2.resize(c.rgb, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
            c.info["pre_downscale"] = f
            c.info["decoded_size"] = [w, h]  # original_size is then the size after the shrink
        reason = photo_verdict(c, from_debs, keep_all)
        if reason:
            excluded.append({"package": c.package, "original_path": c.original_path, "reason": reason})
            c.rgb = None
            continue
        c.phash = phash(c.rgb)
        kept.append(c)
    return kept, excluded


def _dedupe(kept: list[Candidate]) -> tuple[list[Candidate], list[dict]]:
    """The same picture at several resolutions -> the largest (unique photos, duplicates dropped)."""
    kept.sort(key=lambda c: -c.rgb.shape[0] * c.rgb.shape[1])
    unique, duplicates = [], []
    for c in kept:
        twin = next((u for u in unique if hamming(u.phash, c.phash) <= DUP_BITS), None)
        if twin is not None:
            duplicates.append(
                {"package": c.package, "original_path": c.original_path, "duplicate_of": twin.original_path}
            )
            continue
        unique.append(c)
    return unique, duplicates


def _content_groups(unique: list[Candidate]) -> list[list[Candidate]]:
    """Near-identical content grouped, so that it never straddles the split."""
    groups: list[list[Candidate]] = []
    for c in sorted(unique, key=lambda c: (c.package, c.original_path)):
        g = next((g for g in groups if any(hamming(m.phash, c.phash) <= GROUP_BITS for m in g)), None)
        (g.append(c) if g is not None else groups.append([c]))
    return groups


def _write_photos(groups: list[list[Candidate]], split_of: dict[int, str], out: Path,
                  max_side: int) -> list[dict]:
    """Each kept photo as ``out/<split>/<name>.jpg`` (<= ``max_side`` px, quality 95); manifest entries."""
    images, used = [], set()
    for gi, g in enumerate(groups):
        for c in g:
            h, w = c.rgb.shape[:2]
            f = min(1.0, max_side / max(h, w))
            rgb = (
                c.rgb
                if f >= 1.0
                else cv2.resize(c.rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
            )
            name = _out_name(c, used)
            split = split_of[gi]
            cv2.imwrite(
                str(out / split / name),
                cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 95],
            )
            images.append(
                {
                    "file": f"{split}/{name}",
                    "sha256": hashlib.sha256((out / split / name).read_bytes()).hexdigest(),
                    "split": split,
                    "package": c.package,
                    "package_version": c.version,
                    "original_path": c.original_path,
                    "original_size": [w, h],
                    "size": [rgb.shape[1], rgb.shape[0]],
                    "phash": f"{c.phash:016x}",
                    "content_group": gi,
                    **c.info,
                }
            )
            c.rgb = None
    return images


def _candidates(out: Path, tmp: Path, debs_dir: Path | None, folder: Path | None, packages: tuple[str, ...],
                cache: Path | None) -> tuple[list[Candidate], dict]:
    """(candidate image files, the manifest's ``source``): a folder, or the extracted Debian packages."""
    if folder is not None:
        return candidates_from_folder(Path(folder)), {"kind": "folder", "path": str(folder)}
    debs = fetch_debs(packages, Path(cache or out / "debs_cache"), debs_dir)
    if not debs:
        raise RuntimeError("no wallpaper .deb found or downloadable; pass --folder DIR instead")
    cands = candidates_from_debs(debs, tmp, out / "licenses")
    return cands, {"kind": "debian-packages", "debs": [d.name for d in debs]}


def prepare(
    out: Path,
    debs_dir: Path | None = None,
    folder: Path | None = None,
    packages: tuple[str, ...] = DEFAULT_PACKAGES,
    cache: Path | None = None,
    val_fraction: float = 0.2,
    max_side: int = MAX_SIDE,
    keep_all: bool = False,
    seed: str = "hirqa",
    split_rule: str = "group",
) -> dict:
    """Build ``out/{train,val}/*.jpg`` and ``out/manifest.json``; returns the manifest. ``split_rule``:
    ``group`` (every 1/val_fraction-th content group per package) or ``name`` (round 3's fixed hash
    hold-out, :func:`_split_by_name`)."""
    if split_rule not in ("group", "name"):
        raise ValueError(f"split_rule must be 'group' or 'name', got {split_rule!r}")
    check_not_reserved(() if folder is not None else packages, folder)
    out = Path(out)
    for split in ("train", "val"):
        d = out / split
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="hirqa_debs_") as tmp:
        cands, source = _candidates(out, Path(tmp), debs_dir, folder, packages, cache)
        log.info("%d candidate image files", len(cands))
        kept, excluded = _filter(cands, folder is None, keep_all)
        unique, duplicates = _dedupe(kept)
        groups = _content_groups(unique)
        if split_rule == "name":
            split_of = _split_by_name(groups, val_fraction, seed)
        else:
            split_of = _split(groups, val_fraction, seed) if len(groups) > 1 else {0: "train"}
        images = _write_photos(groups, split_of, out, max_side)
    manifest = {
        "source": source,
        "policy": {
            "max_side": max_side,
            "flat_fraction_max": FLAT_MAX,
            "dedupe_hamming": DUP_BITS,
            "group_hamming": GROUP_BITS,
            "val_fraction": val_fraction,
            "split": split_rule,
            "exclude_list": list(EXCLUDE),
            "jpeg_only_for_packages": [p for p in packages if p not in ROUND3_PACKAGES],
            "min_colours_round3": MIN_COLOURS,
            "pre_downscale": {p: f for p, f in PRE_DOWNSCALE.items() if p in packages},
            "reserved_refused": list(RESERVED_PATTERNS),
            "keep_all": keep_all,
        },
        "counts": {
            "candidates": len(cands),
            "excluded": len(excluded),
            "duplicates": len(duplicates),
            "train": sum(i["split"] == "train" for i in images),
            "val": sum(i["split"] == "val" for i in images),
            "per_package": {
                pkg: {sp: sum(i["split"] == sp and i["package"] == pkg for i in images)
                      for sp in ("train", "val")}
                for pkg in sorted({i["package"] for i in images})
            },
        },
        "images": images,
        "excluded": excluded,
        "duplicates": duplicates,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    log.info(
        "pristine set: %(train)d train + %(val)d val photos (%(excluded)d excluded, "
        "%(duplicates)d duplicates)",
        manifest["counts"],
    )
    return manifest


def export_samples(
    pristine: Path, names: dict[str, str], out: Path, long_side: int = 640, quality: int = 85
) -> list[Path]:
    """Small JPEG copies of chosen pristine photos ({pristine file name: sample name}) + ``LICENSES.md``."""
    manifest = json.loads((Path(pristine) / "manifest.json").read_text())
    by_file = {Path(i["file"]).name: i for i in manifest["images"]}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, written = [], []
    for src, name in names.items():
        entry = by_file[src]
        rgb = read_rgb(Path(pristine) / entry["file"])
        h, w = rgb.shape[:2]
        f = long_side / max(h, w)
        small = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        dst = out / name
        cv2.imwrite(str(dst), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        written.append(dst)
        lic = entry.get("licence", {})
        rows.append(
            f"| `{name}` | {entry['package']} {entry['package_version']} | `{entry['original_path']}` | "
            f"{lic.get('id', '')} | {lic.get('copyright', '')} | {entry.get('author', '')} "
            f"{entry.get('upstream_license', '')} |"
        )
    text = (
        "# Sample photos: provenance and licences\n\n"
        f"Downscaled to {long_side} px (long side), JPEG quality {quality}, from the validation split\n"
        "of the pristine set built by `hirqa prepare-data` (never used for training). Licences as stated\n"
        "in each Debian package's `copyright` file (copied in full by `hirqa prepare-data` to\n"
        "`data/pristine/licenses/`).\n"
        "Change made: downscaled and re-encoded. KDE wallpapers also name their author and upstream licence\n"
        "in `metadata.json` (last column).\n\n"
        "| file | Debian package | original path | licence | copyright | upstream author, licence |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    (out / "LICENSES.md").write_text(text)
    return written
