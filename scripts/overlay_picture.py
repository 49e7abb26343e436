"""Make the README's overlay picture: a sample photo, clear and with motion blur, scored by the shipped
model through the node's per-frame pipeline (hirqa_ros.monitor) and drawn with hirqa_ros.overlay.

    python scripts/overlay_picture.py [--photo hirqa_ros/data/samples/boats.jpg] [--out docs/img/overlay.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from hirqa_ros import load_scorer
from hirqa_ros.degradations import degrade
from hirqa_ros.monitor import CameraMonitor, run_frames
from hirqa_ros.overlay import draw_overlay

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, default=REPO / "hirqa_ros" / "data" / "samples" / "boats.jpg")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "overlay.png")
    ap.add_argument("--fault", default="haze",
                    help="degradation of the second frame (hirqa_ros.degradations)")
    ap.add_argument("--severity", type=int, default=4)
    ap.add_argument("--max-side", type=int, default=480, help="overlay_max_side of each panel")
    args = ap.parse_args(argv)
    bgr = cv2.imread(str(args.photo))
    if bgr is None:
        raise SystemExit(f"cannot read {args.photo}")
    clear = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    frames = [clear, degrade(clear, args.fault, args.severity, seed=0)]
    scorer = load_scorer(backend="onnxruntime")
    panels = []
    for i, rgb in enumerate(frames):  # one camera each: no smoothing carried from one to the other
        monitor = CameraMonitor(f"camera{i}", scorer.thresholds)
        (result,) = run_frames(scorer, [monitor.check(rgb)])
        print(f"frame {i}: score {result.score:.3f} level {int(result.level)} fault {result.fault!r} "
              f"reason {result.reason!r}")
        panels.append(draw_overlay(rgb, result.score, result.level, result.fault or "", result.reason,
                                   args.max_side))
    gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
    picture = np.concatenate([panels[0], gap, panels[1]], axis=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({picture.shape[1]}x{picture.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
