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


def main(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    model = REPO / "models" / "hirqa-s"
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
    cases = []

    def case(name, rc, out, err, note=""):
        tb = "Traceback" in err
        cases.append((name, rc, tb, note or line(err)))
        print(f"{name:<42} rc={rc:<4} traceback={'YES' if tb else 'no ':<3} {note or line(err)}", flush=True)

    # 1 import-official onto an existing model dir (needs an authors'-format checkpoint)
    import torch

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
    case(
        "import-official onto a model dir",
        rc,
        o,
        e,
        f"card calibrated={card['thresholds'].get('calibrated')}, int8 file left: "
        f"{(mdir / 'model.int8.onnx').exists()}, fault head left: {(mdir / 'fault_head.npz').exists()}",
    )
    rc, o, e = hirqa(
        "import-official", "--ckpt", work / "ck.pth", "--variant", "hirqa-s", "--out", mdir, "--force"
    )
    case(
        "import-official --force onto a model dir",
        rc,
        o,
        e,
        "files now: " + ", ".join(sorted(p.name for p in mdir.iterdir())) if rc == 0 else line(e),
    )
    # 4/5 alias bomb labels through bag-eval (the labels loader); memory of the loader alone
    bomb = work / "bomb.yaml"
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
    case(
        "alias-bomb labels: loader",
        p.returncode,
        out,
        p.stderr,
        f"{out[:70]} (peak MB last), {time.monotonic() - t0:.1f} s",
    )
    # 6 unreadable subfolder
    sub = imgs / "locked"
    sub.mkdir(exist_ok=True)
    cv2.imwrite(str(sub / "x.png"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    os.chmod(sub, 0)
    rc, o, e = hirqa("score", "--model", model, "--no-progress", "--jsonl", imgs, unprivileged=True)
    os.chmod(sub, 0o755)
    shutil.rmtree(sub)
    case("score: folder with unreadable subfolder", rc, o, e, f"{len(o.splitlines())} rows; " + line(e))
    # 7 card without thresholds
    m = card_edit(model, work / "m_nothr", lambda c: c.pop("thresholds"))
    rc, o, e = hirqa("score", "--model", m, "--precision", "fp32", "--jsonl", img)
    case("score: card without thresholds", rc, o, e, (line(e) if rc else "scored: " + o.strip()[:70]))
    # 8 warn: true
    m = card_edit(model, work / "m_bool", lambda c: c["thresholds"].update(warn=True))
    rc, o, e = hirqa("score", "--model", m, "--precision", "fp32", "--jsonl", img)
    case("score: card warn: true", rc, o, e, (line(e) if rc else "scored: " + o.strip()[:70]))
    # 9 bench --warmup -3 (tiny run)
    rc, o, e = hirqa(
        "bench",
        "--model",
        model,
        "--backends",
        "onnxruntime",
        "--precisions",
        "fp32",
        "--batches",
        "1",
        "--sizes",
        "64x64",
        "--iters",
        "1",
        "--warmup",
        "-3",
    )
    case("bench --warmup -3", rc, o, e)
    # 10-12 bag-play numbers (argparse only: a missing bag, so nothing is played)
    for args in (["--clock", "0"], ["--clock", "-5"], ["--depth", "0"], ["--depth", "-5"]):
        rc, o, e = hirqa("bag-play", work / "nobag", *args, "--no-progress", timeout=120)
        case("bag-play " + " ".join(args) + " (missing bag)", rc, o, e)
    # 13 fault head contradiction on a 20 % brightness frame
    rc, o, e = hirqa("score", "--model", model, "--precision", "fp32", "--jsonl", "--no-progress", dark)
    rows = [json.loads(x) for x in o.splitlines()]
    ok = [r for r in rows if r["level"] == "OK"]
    noted = [r for r in rows if r.get("notes")]
    case(
        "score: 20/30 % brightness photos vs fault head",
        rc,
        o,
        e,
        f"{len(ok)} of {len(rows)} OK; {len(noted)} with a fault_head_disagrees note",
    )
    # 14/15 NaN / inverted int8 thresholds
    m = card_edit(model, work / "m_nan8", lambda c: c["int8"]["thresholds"].update(warn=float("nan")))
    rc, o, e = hirqa("score", "--model", m, "--precision", "int8", "--jsonl", img)
    case("score: NaN int8 thresholds", rc, o, e)
    m = card_edit(model, work / "m_inv8", lambda c: c["int8"]["thresholds"].update(warn=0.1, error=0.6))
    rc, o, e = hirqa("score", "--model", m, "--precision", "int8", "--jsonl", img)
    case("score: inverted int8 thresholds", rc, o, e)
    # 16/17 export onto an unwritable dir
    ro = work / "ro_model"
    if ro.exists():
        os.chmod(ro, 0o755)
        shutil.rmtree(ro)
    shutil.copytree(model, ro)
    os.chmod(ro, 0o555)
    rc, o, e = hirqa("export", "--model", ro, "--refresh", unprivileged=True)
    case("export --refresh onto unwritable dir", rc, o, e)
    rc, o, e = hirqa(
        "export",
        "--model",
        ro,
        "--int8",
        "--calib-images",
        imgs,
        "--eval-images",
        work / "nothing",
        "--calib-frames",
        "2",
        unprivileged=True,
    )
    case("export --int8 onto unwritable dir", rc, o, e)
    os.chmod(ro, 0o755)
    # 18/19 bench sizes/batches
    for args in (["--sizes", "0x0"], ["--batches", "0"]):
        rc, o, e = hirqa(
            "bench",
            "--model",
            model,
            "--backends",
            "onnxruntime",
            "--precisions",
            "fp32",
            "--iters",
            "1",
            "--warmup",
            "0",
            *(["--batches", "1"] if args[0] == "--sizes" else ["--sizes", "64x64"]),
            *args,
        )
        case("bench " + " ".join(args), rc, o, e)
    # 20/21 closed pipe
    for fmt in ("--jsonl", "--csv"):
        rc, o, e = hirqa(
            "score",
            "--model",
            model,
            "--precision",
            "fp32",
            "--no-progress",
            fmt,
            "--batch-size",
            "1",
            imgs,
            shell_pipe="head -1",
        )
        case(f"score {fmt} | head -1", rc, o, e)
    (work / "cases.json").write_text(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/hostile_cases"))
