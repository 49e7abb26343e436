"""File helpers used by the runtime, the CLI, evaluation and training: image-file reading (one rule
for 16-bit and alpha), image and video extensions, atomic writes and staged outputs (complete results
only), JSON output, and the one bounded reader of users' YAML/JSON files."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hirqa_ros.interrupts import signals_held
from hirqa_ros.limits import DEFAULT_MAX_DECODE_PIXELS, check_size, declared_size
from hirqa_ros.preprocess import to_rgb8

IMAGE_EXTS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm",
    ".pnm", ".pfm", ".jp2", ".sr", ".ras", ".hdr", ".pic", ".exr", ".avif",
})
VIDEO_EXTS = frozenset({
    ".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts",
    ".mts", ".m2ts", ".ogv", ".mjpeg", ".mjpg",
})

try:  # OpenCV prints libjpeg/libpng warnings for corrupt files; callers report those themselves
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
except AttributeError:
    pass


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a file whose extension is an image format OpenCV reads."""
    return Path(path).suffix.lower() in IMAGE_EXTS


def not_regular(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a regular file that can be read to its end (None when it is one)."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks; never opens (a FIFO would block)
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a folder" if stat.S_ISDIR(mode) else "not a regular file")
    return f"skipped: {kind}, not a regular file"


def read_image(path: str | os.PathLike, max_decode_pixels: int = DEFAULT_MAX_DECODE_PIXELS) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB; raises ValueError with the reason.

    EXIF orientation is applied, alpha dropped, grey repeated to three channels, and 16-bit
    images are rounded to 8 bits (``preprocess.to_rgb8``), the same everywhere. FIFOs, devices
    and sockets are refused without being opened; PNG and JPEG sizes are checked against
    ``max_decode_pixels`` from their headers, before decoding."""
    path = Path(path)
    why = not_regular(path)
    if why:
        raise ValueError(why)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"cannot read ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise ValueError("empty file (0 bytes)")
    size = declared_size(data)
    if size is not None:
        check_size(size[0], size[1], max_decode_pixels)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if img is None or img.size == 0:
        raise ValueError(
            "corrupt or unsupported image (OpenCV could not decode it)"
            if is_image_file(path)
            else f"not an image or video (extension {path.suffix or 'none'!r}, not decodable)"
        )
    return to_rgb8(img, bgr=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader never sees half a file (``fsync``: also survive a power cut)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars and arrays, sets and paths."""
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


def to_json(obj: Any, indent: int | None = 2) -> str:
    """JSON text of results (numpy values, sets and paths allowed), ending with a newline."""
    return json.dumps(obj, indent=indent, default=json_default) + "\n"


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON atomically; returns the path."""
    atomic_write_bytes(path, to_json(obj, indent).encode())
    return Path(path)


# ---- untrusted YAML / JSON ------------------------------------------------------------------------
MAX_DOC_BYTES = 1 << 20  # 1 MB: the shipped card is ~30 kB, a labels file a few kB
MAX_DOC_DEPTH = 64
MAX_DOC_NODES = 200_000  # scalars + collections after alias expansion


class UntrustedFileError(ValueError):
    """A YAML/JSON file given by the user is unreadable, too large, too deep or an alias bomb."""


def _tree_size(node: Any, max_depth: int, where: str) -> int:
    """Values of a composed YAML graph after alias expansion (an alias is the anchored node object
    itself, shared), counted without expanding (memoised per node); raises when the expanded tree is
    deeper than ``max_depth`` or an alias contains itself."""
    import yaml

    def kids(n: Any) -> list:
        if isinstance(n, yaml.ScalarNode):
            return []
        return [v for kv in n.value for v in kv] if isinstance(n, yaml.MappingNode) else list(n.value)

    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        if done:
            on_path.discard(id(n))
            k = kids(n)
            size[id(n)] = 1 + sum(size[id(c)] for c in k)
            height[id(n)] = 1 + max((height[id(c)] for c in k), default=0)
            if height[id(n)] > max_depth:
                raise UntrustedFileError(f"{where}: nested deeper than {max_depth} levels; refused")
            continue
        if id(n) in size:
            continue
        if id(n) in on_path:
            raise UntrustedFileError(f"{where}: a recursive alias (a node that contains itself); refused")
        on_path.add(id(n))
        stack.append((n, True))
        stack.extend((c, False) for c in kids(n))
    return size[id(node)]


def _check_events(text: str, max_depth: int, max_nodes: int, where: str) -> None:
    """Stream the YAML events (nothing is built) and refuse deep nesting or too many values early."""
    import yaml

    count = depth = 0
    for ev in yaml.parse(text, Loader=yaml.SafeLoader):
        count += 1
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > max_depth:
                raise UntrustedFileError(f"{where}: nested deeper than {max_depth} levels; refused")
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if count > max_nodes:
            raise UntrustedFileError(f"{where}: more than {max_nodes} values; refused")


def _json_size(doc: Any, max_depth: int, where: str) -> int:
    count, stack = 0, [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if depth > max_depth:
            raise UntrustedFileError(f"{where}: nested deeper than {max_depth} levels; refused")
        kids = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else []
        stack.extend((k, depth + 1) for k in kids)
    return count


def load_untrusted(path: str | os.PathLike, what: str = "file", max_bytes: int = MAX_DOC_BYTES,
                   max_depth: int = MAX_DOC_DEPTH, max_nodes: int = MAX_DOC_NODES) -> Any:
    """Parse a user's YAML (or ``.json``) file with limits on size, nesting depth and node count after
    alias expansion (a "billion laughs" file is refused before anything is expanded); raises
    :class:`UntrustedFileError` naming the file. ``what`` names the file's role in messages."""
    import yaml

    where = f"{what} {path}" if what else str(path)
    why = not_regular(path)
    if why:
        raise UntrustedFileError(f"{where}: {why.removeprefix('skipped: ')}")
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise UntrustedFileError(f"{where}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise UntrustedFileError(f"{where}: larger than {max_bytes // 1024} kB; refused (a model card or "
                                 "labels file is a few kB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UntrustedFileError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        if path_is_json(path):
            doc = json.loads(text)
            n = _json_size(doc, max_depth, where)
        else:
            _check_events(text, max_depth, max_nodes, where)
            loader = yaml.SafeLoader(text)
            try:
                node = loader.get_single_node()
                n = 0 if node is None else _tree_size(node, max_depth, where)
                if n > max_nodes:
                    raise UntrustedFileError(f"{where}: {n} values after alias expansion (limit "
                                             f"{max_nodes}): an alias bomb?; refused")
                doc = None if node is None else loader.construct_document(node)
            finally:
                loader.dispose()
    except (yaml.YAMLError, ValueError) as exc:
        if isinstance(exc, UntrustedFileError):
            raise
        first = " ".join(str(exc).split())[:200]
        raise UntrustedFileError(f"{where}: not valid {'JSON' if path_is_json(path) else 'YAML'} ({first})") \
            from None
    except RecursionError:
        raise UntrustedFileError(f"{where}: nested too deeply to parse; refused") from None
    if n > max_nodes:
        raise UntrustedFileError(f"{where}: {n} values (limit {max_nodes}); refused")
    return doc


def path_is_json(path: str | os.PathLike) -> bool:
    """True for a ``.json`` file name."""
    return Path(path).suffix.lower() == ".json"


# ---- complete outputs only ----------------------------------------------------------------------
#: held back while a few renames commit a result, delivered right after (hirqa_ros.interrupts)
COMMIT_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def _replace_path(new: Path, path: Path, trash: Path) -> None:
    """Move ``new`` to ``path``; an existing folder at ``path`` goes to ``trash`` first (signals held)."""
    with signals_held(COMMIT_SIGNALS):
        if path.is_dir() and not path.is_symlink():
            os.rename(path, trash)
        os.replace(new, path)


def _usual_mode(path: Path, like: Path | None) -> None:
    """mkdtemp makes 0700 folders: give ``path`` the mode of ``like`` (the folder it replaces) or the
    umask's default."""
    if like is not None and like.exists():
        os.chmod(path, stat.S_IMODE(like.stat().st_mode))
        return
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


@contextmanager
def staged_output(path: str | os.PathLike, copy_of: str | os.PathLike | None = None) -> Iterator[Path]:
    """Build a result (a folder, a bag, a file) at a temporary path beside ``path`` and move it to
    ``path`` only when the block ends normally; an existing result there is replaced whole, never
    mixed with the new one, and left untouched when the block raises (Ctrl-C included).

    Yields the path to write (which does not exist yet, or holds a copy of ``copy_of``: edit a model
    directory in place). The work lies in a hidden ``.<name>.partial-*`` folder beside ``path``,
    removed on failure; a SIGKILL leaves only that, unmistakably partial."""
    with staged_outputs([path], [copy_of]) as (work,):
        yield work


@contextmanager
def staged_outputs(paths: list, copies_of: list | None = None) -> Iterator[list[Path]]:
    """:func:`staged_output` for several results that belong together (a bag and its labels): all
    are moved into place in one step with signals held, or none."""
    paths = [Path(p) for p in paths]
    holders: list[Path] = []
    try:
        works = []
        for path, copy_of in zip(paths, copies_of or [None] * len(paths)):
            path.parent.mkdir(parents=True, exist_ok=True)
            holders.append(Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.partial-")))
            works.append(holders[-1] / path.name)
            if copy_of is not None:
                shutil.copytree(copy_of, works[-1], symlinks=True)
        yield works
        with signals_held(COMMIT_SIGNALS):
            for work, path, holder in zip(works, paths, holders):
                if work.exists():
                    _usual_mode(work, path if path.exists() else None)
                    _replace_path(work, path, holder / ".replaced")
    finally:
        for holder in holders:
            shutil.rmtree(holder, ignore_errors=True)


def describe_existing(path: str | os.PathLike, limit: int = 6) -> str:
    """What ``path`` holds, in a few words, for a refusal to overwrite it."""
    p = Path(path)
    if not p.is_dir():
        return f"{p} is a file ({p.stat().st_size} bytes)"
    names = sorted(x.name for x in p.iterdir())
    shown = ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
    return f"{p} holds {len(names)} entr{'y' if len(names) == 1 else 'ies'}" + (f": {shown}" if names else "")
