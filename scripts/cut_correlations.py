#!/usr/bin/env python3
"""Frame-to-frame correlations of the scene-cut detector over gate sequences, by what the frame is (a
scene cut of the sequence's scenario, a clean frame, glare, another fault), for the plain 32x24
thumbnail used until 2026-12-07 and ``reference.CutDetector.correlation``; plots docs/img/cut_detector.png.

  python scripts/cut_correlations.py OUT.png BAG_PREFIX [BAG_PREFIX ...]

BAG_PREFIX: a sequence from ``hirqa make-bag --scenario`` (BAG, BAG.labels.yaml, BAG.scenario.json).
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict

import cv2
import numpy as np

from hirqa_ros.bag.decoding import decoded_frames
from hirqa_ros.bag.labels import Labels
from hirqa_ros.bag.reader import BagReader
from hirqa_ros.reference import CutDetector

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def plain_thumbnail(rgb: np.ndarray) -> np.ndarray:
    """The detector used until 2026-12-07: the zero-mean, unit-norm plain 32x24 grey thumbnail."""
    g = cv2.resize(rgb, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float32) @ LUMA
    g -= g.mean()
    n = float(np.linalg.norm(g))
    return g / n if n > 1e-6 else g


def correlations(bag: str) -> dict[str, list[tuple[float, float]]]:
    """{group: [(old, new) correlation with the previous frame of the same topic]} of one sequence."""
    labels = Labels.load(bag + ".labels.yaml", bag_start_ns=0)
    origin = labels.origin_ns or 0
    cuts = json.loads(open(bag + ".scenario.json").read())["cuts_s"]
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    prev: dict[str, np.ndarray] = {}
    detectors = {topic: CutDetector() for topic in cuts}
    with BagReader(bag) as reader:
        for row, rgb in decoded_frames(reader, sorted(cuts)):
            if rgb is None:
                continue
            plain, before = plain_thumbnail(rgb), prev.get(row.topic)
            prev[row.topic] = plain
            now = detectors[row.topic].correlation(rgb)
            if before is None or now is None:
                continue
            t = (row.stamp_ns - origin) / 1e9
            label = labels.label_at(row.topic, row.stamp_ns) or "clear"
            group = "scene cuts" if any(abs(t - c) < 0.051 for c in cuts[row.topic]) else (
                "clean frames" if label == "clear" else "glare frames" if label == "glare" else
                "other faulty frames")
            out[group].append((float((plain * before).sum()), now))
    return out


def main() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png, bags = sys.argv[1], sys.argv[2:]
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for bag in bags:
        for g, v in correlations(bag).items():
            groups[g] += v
    colours = {"clean frames": "#2ca02c", "other faulty frames": "#9467bd", "glare frames": "#ff7f0e",
               "scene cuts": "#d62728"}
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    bins = np.linspace(-1, 1, 81)
    for i, (ax, title, th) in enumerate(zip(axes, ("before: plain 32x24 thumbnail",
                                                   "now: 64x48 thumbnail minus its blur"), (0.35, 0.2))):
        for g, c in colours.items():
            v = np.array([x[i] for x in groups[g]])
            h, _ = np.histogram(v, bins)
            ax.stairs(np.where(h > 0, h, 0.7), bins, color=c, lw=1.5, baseline=0.7, label=f"{g} ({v.size})")
            if v.size:
                print(f"{title.split(':')[0]:6s} {g:20s} n={v.size:5d} min={v.min():.3f} max={v.max():.3f}")
        ax.axvline(th, color="k", ls="--", lw=1)
        ax.text(th - 0.03, 20, f"cut below {th}", ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(0.7, 2e4)
        ax.set_xlabel("correlation with the previous frame")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel(f"frames ({len(bags)} gate sequences)")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


if __name__ == "__main__":
    main()
