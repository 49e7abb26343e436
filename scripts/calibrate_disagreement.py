"""Measure where the fault head is confident enough to contradict the score (faults.CONFIDENT).

Frames: three 640x480 cuts of each sample photo (hirqa_ros/data/samples, clean = level 0) and every
full-frame fault type at levels 1, 3 and 5 (hirqa_ros.degradations). For each candidate confidence it
prints how many clean cuts the note would flag, how many frames the score keeps (OK) at level >= 3
it would flag, and how often the head's named class is right. Usage:
    PYTHONPATH=. python scripts/calibrate_disagreement.py [--model DIR]
"""
from __future__ import annotations

import argparse
import glob

import cv2
import numpy as np

from hirqa_ros.degradations import degrade
from hirqa_ros.evaluation.synthetic import FULL_FRAME_TYPES
from hirqa_ros.heads import fault_class_of
from hirqa_ros.scorer import load_scorer


def frames_of(photo: str) -> list[tuple[np.ndarray, str, int]]:
    im = cv2.imread(photo)[:, :, ::-1]
    h, w = im.shape[:2]
    out = []
    for k, (y, x) in enumerate(((0, 0), (h - 480, w - 640), ((h - 480) // 2, (w - 640) // 2))):
        cut = np.ascontiguousarray(im[y:y + 480, x:x + 640])
        out.append((cut, "clean", 0))
        out += [(degrade(cut, t, lv, seed=k), t, lv) for t in FULL_FRAME_TYPES for lv in (1, 3, 5)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    scorer = load_scorer(ap.parse_args().model, backend="onnxruntime", precision="fp32")
    warn, classes, rows = scorer.thresholds.warn, scorer.fault_head.classes, []
    for photo in sorted(glob.glob("hirqa_ros/data/samples/*.jpg")):
        batch = frames_of(photo)
        inf = scorer.infer([f for f, _, _ in batch])
        for (_, t, lv), score, probs in zip(batch, inf.scores, inf.fault_probs):
            p = dict(zip(classes, map(float, probs)))
            top = max((c for c in classes if c != "none"), key=p.get)
            rows.append((lv, "none" if lv == 0 else fault_class_of(t, lv), score >= warn, top, p[top]))
    clean = [r for r in rows if r[0] == 0]
    kept_bad = [r for r in rows if r[2] and r[0] >= 3]
    print(f"{len(rows)} frames, {len(clean)} clean; warn {warn}")
    for c in (0.7, 0.75, 0.8, 0.85, 0.9):
        hit = [r for r in rows if r[4] >= c]
        degraded, right = np.mean([r[0] > 0 for r in hit]), np.mean([r[3] == r[1] for r in hit])
        print(f"confidence {c}: clean flagged {sum(r[4] >= c for r in clean)}/{len(clean)}, kept level>=3 "
              f"flagged {sum(r[4] >= c for r in kept_bad)}/{len(kept_bad)}, flagged frames degraded "
              f"{degraded:.3f}, named class right {right:.3f}")


if __name__ == "__main__":
    main()
