"""Results are moved into place only when their run is complete: a one-bag evaluation runs in a
staging folder; an interrupted one never replaces a complete earlier run (it goes to ``partial/``)
and its quality bag is renamed ``<bag>_quality.PARTIAL`` with a marker file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

PARTIAL_DIR = "partial"
PARTIAL_SUFFIX = ".PARTIAL"
MARKER = "PARTIAL.txt"


def relocate(files: dict[str, Any], dest: Path) -> dict[str, Any]:
    """``files`` (name -> path or list of paths) pointing into ``dest`` instead of a staging folder."""
    def move(v: Any) -> Any:
        if isinstance(v, list):
            return [move(x) for x in v]
        return str(dest / Path(v).name) if isinstance(v, str) else v
    return {k: move(v) for k, v in files.items()}


def relocate_summary(folder: Path, dest: Path) -> None:
    """Rewrite ``folder/summary.json``'s ``files`` to name ``dest`` (where ``folder`` is renamed to)."""
    p = folder / "summary.json"
    if p.is_file():
        s = json.loads(p.read_text())
        s["files"] = relocate(s.get("files") or {}, dest)
        p.write_text(json.dumps(s, indent=2) + "\n")


def complete_run(out: Path) -> bool:
    """True when ``out`` holds a complete earlier evaluation (summary.json with complete: true)."""
    try:
        return bool(json.loads((out / "summary.json").read_text()).get("complete", True))
    except (OSError, ValueError):
        return False


def mark_partial_bag(stage: Path, res: Any) -> None:
    """Rename an interrupted run's quality bag to ``<name>.PARTIAL`` and put :data:`MARKER` in it."""
    bag = res.files.get("bag")
    if not bag:
        return
    src = stage / Path(bag).name
    if src.is_dir():
        dst = src.with_name(src.name + PARTIAL_SUFFIX)
        os.replace(src, dst)
        (dst / MARKER).write_text("PARTIAL: the evaluation was interrupted; this bag copy holds quality "
                                  "messages only for the frames scored before that.\n")
        res.files["bag"] = str(dst)
        s = json.loads((stage / "summary.json").read_text())
        s["files"]["bag"] = str(dst)
        (stage / "summary.json").write_text(json.dumps(s, indent=2) + "\n")


def evaluate_into(bag: str | Path, out: str | Path, **kw: Any) -> Any:
    """``evaluate_bag`` (same arguments) through a staging folder inside ``out``: a complete result
    replaces what ``out`` held; an interrupted one goes to ``out/partial/`` when ``out`` holds a
    complete earlier run, else into ``out`` marked partial."""
    from hirqa_ros.bag.evaluate import check_out_dir, evaluate_bag

    out = Path(out)
    check_out_dir(out)
    stage = Path(tempfile.mkdtemp(prefix=".hirqa-run-", dir=out))
    try:
        res = evaluate_bag(bag, stage, **kw)
        dest = out
        if res.interrupted:
            mark_partial_bag(stage, res)
            if complete_run(out):
                dest = out / PARTIAL_DIR
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir()
        else:  # complete: earlier partial leftovers no longer describe this folder
            shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)
            for old in out.glob(f"*_quality{PARTIAL_SUFFIX}"):
                shutil.rmtree(old, ignore_errors=True)
        relocate_summary(stage, dest)
        for item in sorted(stage.iterdir(), key=lambda p: p.name == "summary.json"):
            target = dest / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
        res.files = relocate(res.files, dest)
        res.summary["files"] = relocate(res.summary.get("files") or {}, dest)
        res.out_dir = dest
        return res
    finally:
        shutil.rmtree(stage, ignore_errors=True)
