"""Many bags in one run: find the bags named by paths, folders and glob patterns, key each bag's
result by its content, the model and the options, and keep finished results safe (atomic commit,
resume, refuse to replace other options' results without ``force``)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from hirqa_ros.bag.reader import STORAGE_SUFFIXES

BAGS_DIR = "bags"
KEY_FILE = "fleet_key.json"
KEY_VERSION = 1
_GLOB_CHARS = re.compile(r"[*?\[]")
_SPLIT_PART = re.compile(r"^(?P<prefix>.+)_\d+$")


class InputError(ValueError):
    """An input path or pattern names no bag (missing path, pattern that matches nothing)."""


@dataclass
class FleetOptions:
    """Everything that decides a bag's result (its key) and how the outputs are written.

    ``evaluate`` holds ``evaluate_bag``'s keyword arguments (thresholds, smoothing, topics, frame
    checks, batch, write_bag, plots, ...: the one-bag path's, built once by the command line), so
    every option of a one-bag evaluation reaches every bag of a fleet and its key."""

    model: str | None = None
    backend: str = "auto"
    input_policy: str | None = None
    device: str | None = None  # as load_scorer's (None: best available)
    precision: str | None = None  # as load_scorer's (None: auto; int8 has its own card thresholds)
    labels: str | None = None  # a labels file for every bag, a folder of <bag>.labels.yaml, or None
    evaluate: dict[str, Any] = field(default_factory=dict)
    write_accepted: bool = False
    thumbs: int = 3  # worst frames kept per fault family and bag (for the report)
    card_sha256: str | None = None  # the driver's model card: a worker with another model refuses

    @property
    def topics(self) -> list[str] | None:
        return self.evaluate.get("topics")

    def key_fields(self) -> dict[str, Any]:
        """The options as plain JSON values (batch excluded: it does not change a verdict; the model
        enters the key as its card's sha256)."""
        d: dict[str, Any] = {"backend": self.backend, "input_policy": self.input_policy,
                             "labels": self.labels,
                             "write_accepted": self.write_accepted, "thumbs": self.thumbs}
        d.update({k: v for k, v in (("device", self.device), ("precision", self.precision)) if v})  # unset:
        # not in the key, so results of runs before these options existed still count
        for k, v in sorted(self.evaluate.items()):
            if k != "batch":
                d[k] = asdict(v) if is_dataclass(v) else v
        return d


@dataclass
class BagInput:
    """One bag of the run: its path, a unique result name and its labels file (or None)."""

    path: Path
    name: str
    labels: Path | None = None
    problems: list[str] = field(default_factory=list)


# --- finding the bags ---------------------------------------------------------------------------

def is_bag_dir(p: Path) -> bool:
    """A rosbag2 folder (it has a metadata.yaml)."""
    return p.is_dir() and (p / "metadata.yaml").is_file()


def _storage_files(p: Path) -> list[Path]:
    return sorted(f for f in p.iterdir() if f.is_file() and f.suffix in STORAGE_SUFFIXES)


def _is_split_bag(files: list[Path]) -> bool:
    """rosbag2 storage files of one split bag without its metadata.yaml (``P_0.mcap``, ``P_1.mcap``)."""
    if not files or any(f.suffix == ".bag" for f in files):
        return False
    prefixes = {m.group("prefix") if (m := _SPLIT_PART.match(f.stem)) else None for f in files}
    return len(prefixes) == 1 and None not in prefixes


def bags_in_folder(p: Path) -> list[Path]:
    """The bags in a folder that is not itself a bag: bag folders (recursively) and storage files."""
    if is_bag_dir(p):
        return [p]
    files = _storage_files(p)
    subdirs = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    found: list[Path] = []
    for d in subdirs:
        found.extend(bags_in_folder(d))
    if not found and _is_split_bag(files):
        return [p]  # one rosbag2 bag whose metadata.yaml is missing: the reader reads its parts
    return sorted(found + files)


def expand_inputs(items: list[str]) -> list[Path]:
    """Bag paths named by ``items`` (paths of bags, folders of bags, glob patterns), deduplicated, in
    order. Raises :class:`InputError` for a missing path or a pattern that matches nothing."""
    out: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.exists():
            paths = bags_in_folder(p) if p.is_dir() else [p]
            if not paths:
                raise InputError(f"{item}: no bag in this folder (no metadata.yaml, .mcap, .db3 or .bag)")
        elif _GLOB_CHARS.search(item):
            matches = sorted(glob.glob(os.path.expanduser(item), recursive=True))
            paths = []
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    paths.extend(bags_in_folder(mp))
                elif mp.suffix in STORAGE_SUFFIXES:
                    paths.append(mp)
            if not paths:
                raise InputError(f"{item}: the pattern matches no bag")
        else:
            raise InputError(f"{item}: no such file or directory")
        for q in paths:
            if q.resolve() not in {o.resolve() for o in out}:
                out.append(q)
    return out


def bag_name(path: Path) -> str:
    """Result name of a bag: its folder name, or its file name without the suffix."""
    return path.stem if path.is_file() else path.name


def plan_inputs(paths: list[Path], labels: str | None) -> list[BagInput]:
    """Unique result names (a short hash of the path added where names collide) and labels files:
    ``labels`` a file (every bag), a folder (``<name>.labels.yaml`` in it), or None (the bag's
    sibling ``<bag>.labels.yaml`` that ``hirqa make-bag`` writes, when present)."""
    names = [re.sub(r"[^A-Za-z0-9_.-]+", "_", bag_name(p)) or "bag" for p in paths]
    out = []
    for p, n in zip(paths, names):
        if names.count(n) > 1:
            n = f"{n}-{hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:8]}"
        lab: Path | None = None
        if labels and Path(labels).is_dir():
            cand = Path(labels) / f"{bag_name(p)}.labels.yaml"
            lab = cand if cand.is_file() else None
        elif labels:
            lab = Path(labels)
        else:
            cand = p.with_name(p.name + ".labels.yaml")
            lab = cand if cand.is_file() else None
        out.append(BagInput(p, n, lab))
    return out


# --- keys -----------------------------------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _head_tail_hash(f: Path, n: int = 1 << 20) -> str:
    """sha256 of a storage file's first and last ``n`` bytes (MCAP and ROS 1 keep their index at the end)."""
    h = hashlib.sha256()
    size = f.stat().st_size
    with f.open("rb") as fh:
        h.update(fh.read(n))
        if size > n:
            fh.seek(max(n, size - n))
            h.update(fh.read(n))
    return h.hexdigest()


def bag_fingerprint(path: Path) -> dict[str, Any]:
    """Size and mtime of each storage file and a hash of the bag's metadata (metadata.yaml, else
    each file's head and tail): changes whenever the bag's content does, without reading it all."""
    files = [path] if path.is_file() else [f for f in sorted(path.rglob("*")) if f.is_file() and (
        f.suffix in STORAGE_SUFFIXES or f.name == "metadata.yaml")]
    d: dict[str, Any] = {"files": {}}
    for f in files:
        st = f.stat()
        rel = f.name if path.is_file() else str(f.relative_to(path))
        d["files"][rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    meta = path / "metadata.yaml" if path.is_dir() else None
    if meta is not None and meta.is_file():
        d["metadata_sha256"] = _sha256(meta.read_bytes())
    else:
        d["metadata_sha256"] = _sha256("".join(_head_tail_hash(f) for f in files).encode())
    return d


def card_sha256(model_dir: str | Path) -> str:
    """sha256 of a model directory's card (which pins every model file by its sha256)."""
    from hirqa_ros.artifacts import CARD_FILE

    return _sha256((Path(model_dir) / CARD_FILE).read_bytes())


def model_fingerprint(model: str | None) -> dict[str, Any]:
    """The model directory, its name and the sha256 of its card."""
    from hirqa_ros.artifacts import load_artifact

    art = load_artifact(model, verify=False)
    return {"dir": str(art.path), "name": art.name, "card_sha256": card_sha256(art.path)}


def result_key(bag: BagInput, model: dict[str, Any], opts: FleetOptions) -> dict[str, Any]:
    """The key of one bag's result: bag content, model, options and labels content."""
    labels = None
    if bag.labels is not None and bag.labels.is_file():
        labels = _sha256(bag.labels.read_bytes())
    key = {"version": KEY_VERSION, "bag": bag_fingerprint(bag.path), "model_sha256": model["card_sha256"],
           "options": opts.key_fields(), "labels_sha256": labels}
    key["digest"] = _sha256(json.dumps(key, sort_keys=True, default=str).encode())
    return key


# --- the result store ----------------------------------------------------------------------------

class BusyError(RuntimeError):
    """Another run is writing into the same output folder."""


def _lock(path: Path) -> Any:
    """An exclusive lock on ``path`` held as long as the returned file is open (released at exit)."""
    import fcntl

    f = path.open("a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise BusyError(f"another hirqa bag-eval run is writing into {path.parent}; wait for it or choose "
                        "another --out") from None
    return f


class ResultStore:
    """``OUT/bags/<name>/``: one complete result per bag, each with its key; results are committed
    by renaming a finished staging folder into place, never written in place."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.root = out / BAGS_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(out / ".fleet.lock")
        self._recover()

    def _recover(self) -> None:
        """Undo what a kill between the two renames of :meth:`commit` or during staging left."""
        for p in self.root.glob(".old-*"):
            name = p.name.split("-", 2)[2] if p.name.count("-") >= 2 else ""
            if name and not (self.root / name).exists():
                os.replace(p, self.root / name)
            else:
                shutil.rmtree(p, ignore_errors=True)
        for p in self.root.glob(".stage-*"):
            shutil.rmtree(p, ignore_errors=True)

    def close(self) -> None:
        """Release the output folder's lock."""
        self._lock.close()

    def dir(self, name: str) -> Path:
        return self.root / name

    def stored_key(self, name: str) -> dict[str, Any] | None:
        """The key of ``name``'s stored result (None: no result or no readable key)."""
        try:
            return json.loads((self.root / name / KEY_FILE).read_text())
        except (OSError, ValueError):
            return None

    def state(self, name: str, key: dict[str, Any]) -> str:
        """'done' (a result with this key), 'other' (a result of other options/model/content), 'todo'."""
        have = self.stored_key(name)
        if have is None:
            return "other" if (self.root / name).exists() else "todo"
        return "done" if have.get("digest") == key["digest"] else "other"

    def stage(self, name: str) -> Path:
        """A fresh staging folder for ``name`` beside the results (same file system: rename is atomic)."""
        return Path(tempfile.mkdtemp(prefix=f".stage-{name}-", dir=self.root))

    def commit(self, name: str, stage: Path, key: dict[str, Any]) -> Path:
        """Write the key into ``stage`` and rename it to ``bags/<name>`` (an older result is moved
        aside first and removed after)."""
        (stage / KEY_FILE).write_text(json.dumps(key, indent=2, sort_keys=True, default=str) + "\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stage, 0o777 & ~umask)  # mkdtemp made it private
        final = self.root / name
        old = None
        if final.exists():
            old = self.root / f".old-{os.getpid()}-{name}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(stage, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def discard(self, stage: Path) -> None:
        """Remove a staging folder that will not be committed."""
        shutil.rmtree(stage, ignore_errors=True)
