"""Helpers of the hostile-input suite: run ``hirqa`` as a real process (optionally without root's
permission override), measure its peak memory, and build small hostile files."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
#: root ignores file permissions: permission cases run without the capabilities that let it
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def can_drop_permissions() -> bool:
    return os.geteuid() != 0 or shutil.which("setpriv") is not None


def hirqa_cmd(*args, unprivileged: bool = False) -> list[str]:
    prefix = NO_DAC if unprivileged and os.geteuid() == 0 else []
    return [*prefix, sys.executable, "-m", "hirqa_ros.cli.main", *map(str, args)]


def run_hirqa(*args, unprivileged: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(hirqa_cmd(*args, unprivileged=unprivileged), cwd=REPO, env=ENV, text=True,
                          capture_output=True, timeout=timeout)


def start_hirqa(*args, **popen) -> subprocess.Popen:
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen(hirqa_cmd(*args), cwd=REPO, env=ENV, **popen)


def one_line_error(stderr: str) -> bool:
    """No traceback, and the error said in one line (log prefixes and INFO lines aside)."""
    errors = [x for x in stderr.splitlines() if x.startswith(("error", "ERROR", "interrupted"))]
    return "Traceback" not in stderr and len(errors) == 1


PEAK_WRAPPER = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); "
                "_, st, ru = os.wait4(p.pid, 0); print(ru.ru_maxrss, file=sys.stderr); "
                "sys.exit(os.waitstatus_to_exitcode(st))")


def run_with_peak_rss(cmd: list[str], timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd`` through a small wrapper that reports its peak RSS (MB) from wait4: a child forked
    straight from the large pytest process would carry the parent's pages in its ru_maxrss."""
    p = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *cmd], cwd=REPO, env=ENV, capture_output=True,
                       text=True, timeout=timeout)
    peak_kb = int(p.stderr.strip().splitlines()[-1])
    return p, peak_kb / 1024


def alias_bomb(path: Path, levels: int = 9) -> Path:
    """A "billion laughs" labels file: 10**levels strings through ``drop_labels`` in a few hundred bytes."""
    chain = ["&a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        chain.append(f"&{chr(97 + i)} [" + ", ".join(["*" + chr(96 + i)] * 10) + "]")
    path.write_text("version: 1\ndrop_labels: [" + ", ".join(chain) + "]\nsegments: []\n")
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path (hidden entries included)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def edit_card(src: Path, dst: Path, edit) -> Path:
    """A copy of the model directory ``src`` at ``dst`` whose model.yaml was changed by ``edit(card)``."""
    shutil.copytree(src, dst)
    card = yaml.safe_load((dst / "model.yaml").read_text())
    edit(card)
    (dst / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return dst


def leftovers(parent: Path) -> list[str]:
    """Hidden staging folders (``.<name>.partial-*``) left in ``parent``."""
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name)
