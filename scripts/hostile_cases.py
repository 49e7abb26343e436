"""Reproduce the 22 cases of issue 29 against the current tree and print one line per case:
exit status, traceback or not, and what was observed. Usage: python scripts/hostile_cases.py WORKDIR
(WORKDIR: an empty scratch folder; the shipped models/hirqa-s is copied, never modified)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(os.environ.get("HIRQA_REPO") or Path(__file__).resolve().parents[1])
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


#: root ignores file permissions: run the permission cases without the capabilities that let it
NO_DAC = (
    ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    if os.geteuid() == 0 and shutil.which("setpriv")
    else []
)


def hirqa(*args, timeout=300, shell_pipe=None, unprivileged=False):
    cmd = [*(NO_DAC if unprivileged else []), PY, "-m", "hirqa_ros.cli.main", *map(str, args)]
    if shell_pipe:
        line = " ".join(f"'{c}'" for c in cmd) + f' | {shell_pipe}; echo "rc=${{PIPESTATUS[0]}}" >&2'
        p = subprocess.run(
            ["bash", "-c", line], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout
        )
        rc = int(p.stderr.strip().rsplit("rc=", 1)[1])
        return rc, p.stdout, p.stderr
    p = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    return (lines[-1] if lines else "")[:110]


def card_edit(src: Path, dst: Path, fn) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    card = yaml.safe_load((dst / "model.yaml").read_text())
    fn(card)
    (dst / "model.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return dst


@dataclass
class Ctx:
    """What the cases share: the work folder, the shipped model, the inputs and the results so far."""

    work: Path
    model: Path
    img: Path
    dark: Path
    imgs: Path
    rng: np.random.Generator
    cases: list = field(default_factory=list)

    def case(self, name, rc, out, err, note=""):
        tb = "Traceback" in err
        self.cases.append((name, rc, tb, note or line(err)))
        print(f"{name:<42} rc={rc:<4} traceback={'YES' if tb else 'no ':<3} {note or line(err)}", flush=True)


def bench(model: Path, *args):
    """``hirqa bench`` of the model on ONNX Runtime fp32, one iteration, with ``args``."""
    return hirqa("bench", "--model", model, "--backends", "onnxruntime", "--precisions", "fp32",
                 "--iters", "1", *args)


def inputs(work: Path) -> Ctx:
    """A random 320x240 frame, darkened samples (20/30 % brightness) and 40 small random frames."""
    work.mkdir(parents=True, exist_ok=True)
    img = work / "img.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(img), rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    dark = work / "dark"
    dark.mkdir(exist_ok=True)
    for f in sorted((REPO / "hirqa_ros" / "data" / "samples").glob("*.jpg")):
        for b in (0.2, 0.3):
            im = cv2.imread(str(f)).astype(np.float32) * b
            cv2.imwrite(str(dark / f"{f.stem}_{int(b * 100)}.png"), im.astype(np.uint8))
    imgs = work / "imgs"
    imgs.mkdir(exist_ok=True)
    for i in range(40):
        cv2.imwrite(str(imgs / f"{i:02d}.png"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    return Ctx(work, REPO / "models" / "hirqa-s", img, dark, imgs, rng)


def import_official_cases(c: Ctx) -> None:
    """1-3: import-official onto an existing model dir (needs an authors'-format checkpoint)."""
    import torch

    work, model = c.work, c.model
    sd = torch.load(model / "weights.pth", map_location="cpu", weights_only=True)
    torch.save(
        {"model_state_dict": {k: v.float() for k, v in sd["model_state_dict"].items()}}, work / "ck.pth"
    )
    mdir = work / "existing_model"
    if mdir.exists():
        shutil.rmtree(mdir)
    shutil.copytree(model, mdir)
    rc, o, e = hirqa("import-official", "--ckpt", work / "ck.pth", "--variant", "hirqa-s", "--out", mdir)
    card = yaml.safe_load((mdir / "model.yaml").read_text())
    c.case("import-official onto a model dir", rc, o, e,
           f"card calibrated={card['thresholds'].get('calibrated')}, int8 file left: "
           f"{(mdir / 'model.int8.onnx').exists()}, fault head left: {(mdir / 'fault_head.npz').exists()}")
    rc, o, e = hirqa(
        "import-official", "--ckpt", work / "ck.pth", "--variant", "hirqa-s", "--out", mdir, "--force"
    )
    c.case("import-official --force onto a model dir", rc, o, e,
           "files now: " + ", ".join(sorted(p.name for p in mdir.iterdir())) if rc == 0 else line(e))


def alias_bomb_case(c: Ctx) -> None:
    """4/5: alias bomb labels through bag-eval's labels loader; memory of the loader alone."""
    bomb = c.work / "bomb.yaml"
    chain = ["&a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 9):
        chain.append(f"&{chr(97 + i)} [" + ", ".join(["*" + chr(96 + i)] * 10) + "]")
    bomb.write_text("version: 1\ndrop_labels: [" + ", ".join(chain) + "]\nsegments: []\n")
    code = (
        "import resource,sys,json; from hirqa_ros.bag.labels import Labels\n"
        "try:\n  Labels.load(sys.argv[1]); r='accepted'\nexcept Exception as e: r=str(e)[:80]\n"
        "print(r, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss//1024)"
    )
    t0 = time.monotonic()
    p = subprocess.run([PY, "-c", code, bomb], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    out = p.stdout.strip()
    c.case("alias-bomb labels: loader", p.returncode, out, p.stderr,
           f"{out[:70]} (peak MB last), {time.monotonic() - t0:.1f} s")


def score_cases(c: Ctx) -> None:
    """6-8: an unreadable subfolder, broken cards."""
    work, model, img = c.work, c.model, c.img
    sub = c.imgs / "locked"
    sub.mkdir(exist_ok=True)
    cv2.imwrite(str(sub / "x.png"), c.rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    os.chmod(sub, 0)
    rc, o, e = hirqa("score", "--model", model, "--no-progress", "--jsonl", c.imgs, unprivileged=True)
    os.chmod(sub, 0o755)
    shutil.rmtree(sub)
    c.case("score: folder with unreadable subfolder", rc, o, e, f"{len(o.splitlines())} rows; " + line(e))
    for name, edit in (("without thresholds", lambda d: d.pop("thresholds")),
                       ("warn: true", lambda d: d["thresholds"].update(warn=True))):
        m = card_edit(model, work / ("m_nothr" if "without" in name else "m_bool"), edit)
        rc, o, e = hirqa("score", "--model", m, "--precision", "fp32", "--jsonl", img)
        c.case(f"score: card {name}", rc, o, e, (line(e) if rc else "scored: " + o.strip()[:70]))


def head_and_int8_cases(c: Ctx) -> None:
    """13-15: dark photos against the fault head, broken int8 thresholds."""
    work, model, img = c.work, c.model, c.img
    rc, o, e = hirqa("score", "--model", model, "--precision", "fp32", "--jsonl", "--no-progress", c.dark)
    rows = [json.loads(x) for x in o.splitlines()]
    ok = [r for r in rows if r["level"] == "OK"]
    noted = [r for r in rows if r.get("notes")]
    c.case("score: 20/30 % brightness photos vs fault head", rc, o, e,
           f"{len(ok)} of {len(rows)} OK; {len(noted)} with a fault_head_disagrees note")
    for name, folder, th in (("NaN", "m_nan8", {"warn": float("nan")}),
                             ("inverted", "m_inv8", {"warn": 0.1, "error": 0.6})):
        m = card_edit(model, work / folder, lambda d, th=th: d["int8"]["thresholds"].update(**th))
        rc, o, e = hirqa("score", "--model", m, "--precision", "int8", "--jsonl", img)
        c.case(f"score: {name} int8 thresholds", rc, o, e)


def argument_cases(c: Ctx) -> None:
    """9-12: bench and bag-play numbers out of range (bag-play: a missing bag, nothing played)."""
    rc, o, e = bench(c.model, "--batches", "1", "--sizes", "64x64", "--warmup", "-3")
    c.case("bench --warmup -3", rc, o, e)
    for args in (["--clock", "0"], ["--clock", "-5"], ["--depth", "0"], ["--depth", "-5"]):
        rc, o, e = hirqa("bag-play", c.work / "nobag", *args, "--no-progress", timeout=120)
        c.case("bag-play " + " ".join(args) + " (missing bag)", rc, o, e)


def bench_size_cases(c: Ctx) -> None:
    """18/19: bench sizes and batches out of range."""
    for args in (["--sizes", "0x0"], ["--batches", "0"]):
        rc, o, e = bench(c.model, "--warmup", "0",
                         *(["--batches", "1"] if args[0] == "--sizes" else ["--sizes", "64x64"]), *args)
        c.case("bench " + " ".join(args), rc, o, e)


def export_cases(c: Ctx) -> None:
    """16/17: export onto an unwritable dir."""
    ro = c.work / "ro_model"
    if ro.exists():
        os.chmod(ro, 0o755)
        shutil.rmtree(ro)
    shutil.copytree(c.model, ro)
    os.chmod(ro, 0o555)
    rc, o, e = hirqa("export", "--model", ro, "--refresh", unprivileged=True)
    c.case("export --refresh onto unwritable dir", rc, o, e)
    rc, o, e = hirqa("export", "--model", ro, "--int8", "--calib-images", c.imgs, "--eval-images",
                     c.work / "nothing", "--calib-frames", "2", unprivileged=True)
    c.case("export --int8 onto unwritable dir", rc, o, e)
    os.chmod(ro, 0o755)


def closed_pipe_cases(c: Ctx) -> None:
    """20/21: score into a closed pipe."""
    for fmt in ("--jsonl", "--csv"):
        rc, o, e = hirqa("score", "--model", c.model, "--precision", "fp32", "--no-progress", fmt,
                         "--batch-size", "1", c.imgs, shell_pipe="head -1")
        c.case(f"score {fmt} | head -1", rc, o, e)


def main(work: Path) -> None:
    c = inputs(work)
    for cases in (import_official_cases, alias_bomb_case, score_cases, argument_cases, head_and_int8_cases,
                  export_cases, bench_size_cases, closed_pipe_cases):  # in the order of docs/reliability.md
        cases(c)
    (work / "cases.json").write_text(json.dumps(c.cases, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/hostile_cases"))
