"""PNG plots of a bag evaluation (matplotlib, Agg): score over time per camera with the camera's
reference (reference gate), rejected frames shaded (and a bar coloured by fault class when the model
has a fault head) and labelled segments shaded, and score histograms per label."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from hirqa_ros.bag.labels import Labels
from hirqa_ros.decision import Thresholds

_COLORS = [
    "tab:orange",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    "tab:red",
    "tab:gray",
]


# one fixed colour per fault class, so plots of different bags read alike (``none`` never marks a rejection)
FAULT_COLORS = {"blur": "tab:cyan", "motion_blur": "tab:purple", "haze": "tab:gray", "low_light": "black",
                "overexposure": "gold", "glare": "tab:orange", "noise": "tab:green",
                "compression": "tab:brown", "other": "tab:pink"}
REJECTED_COLOR = "red"  # rejected frames without a fault class


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _safe(topic: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", topic.strip("/")) or "topic"


def _label_colors(labels: Labels | None) -> dict[str, str]:
    if labels is None:
        return {}
    names = [n for n in labels.all_labels if n != labels.default_label]
    return {n: _COLORS[i % len(_COLORS)] for i, n in enumerate(names)}


def _time(row: Any, clock: str) -> int | None:
    return row.stamp_ns if clock == "stamp" else row.bag_time_ns


def plot_timeline(
    rows: list[Any], out_dir: Path, labels: Labels | None = None, thresholds: Thresholds | None = None
) -> list[Path]:
    """One ``timeline_<topic>.png`` per topic: score (dots), smoothed score and the camera's reference over
    time, rejected frames shaded red over the whole height and as a bar at the bottom (coloured by their
    fault class, red without one), labelled segments shaded by label."""
    plt = _plt()
    clock = labels.clock if labels else "bag"
    by_topic: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        if _time(r, clock) is not None:
            by_topic[r.topic].append(r)
    all_t = [_time(r, clock) for r in rows if _time(r, clock) is not None]
    origin = labels.origin_ns if labels and labels.origin_ns is not None else (min(all_t) if all_t else 0)
    colors = _label_colors(labels)
    paths = []
    for topic, rs in sorted(by_topic.items()):
        rs = sorted(rs, key=lambda r: _time(r, clock))
        t = np.array([(_time(r, clock) - origin) / 1e9 for r in rs])
        fig, ax = plt.subplots(figsize=(11, 3.6))
        shown = set()
        if labels:
            for s in labels.segments_for(topic):
                name = s.label if s.label not in shown else None
                shown.add(s.label)
                ax.axvspan(
                    (s.start_ns - origin) / 1e9,
                    (s.end_ns - origin) / 1e9,
                    color=colors.get(s.label, "gray"),
                    alpha=0.18,
                    label=f"label: {name}" if name else None,
                )
        ok = np.array([r.score is not None for r in rs])
        sc = np.array([r.score if r.score is not None else np.nan for r in rs])
        sm = np.array([r.smoothed if r.smoothed is not None else np.nan for r in rs])
        ax.plot(t[ok], sc[ok], ".", ms=3, color="tab:blue", label="score")
        if np.any(np.abs(sm[ok] - sc[ok]) > 1e-9):
            ax.plot(t[ok], sm[ok], "-", lw=1, color="navy", label="smoothed")
        ref = np.array([r.reference if getattr(r, "reference", None) is not None else np.nan for r in rs])
        if np.isfinite(ref).any():
            ax.plot(t, ref, "-", lw=1.2, color="tab:green", label="reference")
        rej = np.array([r.verdict == "drop" for r in rs])
        dt = float(np.median(np.diff(t))) if t.size > 1 else 0.1
        faults_seen: dict[str, str] = {}
        for i in np.flatnonzero(rej):  # rejected spans: a bar under the curve, coloured by fault class
            fault = getattr(rs[i], "fault", None)
            color = FAULT_COLORS.get(fault, REJECTED_COLOR) if fault else REJECTED_COLOR
            faults_seen.setdefault(fault or "", color)
            ax.axvspan(t[i] - dt / 2, t[i] + dt / 2, ymin=0, ymax=0.06, color=color, lw=0)
            ax.axvspan(t[i] - dt / 2, t[i] + dt / 2, ymin=0.06, ymax=1, color=REJECTED_COLOR, alpha=0.07,
                       lw=0)
        err = np.array([r.verdict == "error" for r in rs])
        if err.any():
            ax.plot(t[err], np.zeros(int(err.sum())) + 0.02, "x", color="black", ms=4, label="not decodable")
        for fault, color in sorted(faults_seen.items()):
            ax.plot([], [], color=color, lw=6, label=f"rejected: {fault}" if fault else "rejected")
        if thresholds is not None:
            ax.axhline(thresholds.warn, color="orange", ls="--", lw=0.8, label=f"warn {thresholds.warn:g}")
            ax.axhline(thresholds.error, color="red", ls="--", lw=0.8, label=f"error {thresholds.error:g}")
        ax.set_ylim(0, 1)
        ax.set_xlabel(f"time [s] ({'header stamp' if clock == 'stamp' else 'bag time'})")
        ax.set_ylabel("quality score")
        ax.set_title(f"{topic}: score over time")
        ax.legend(loc="upper right", fontsize=7, ncol=3)
        fig.tight_layout()
        path = out_dir / f"timeline_{_safe(topic)}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_histograms(
    rows: list[Any], path: Path, labels: Labels | None = None, thresholds: Thresholds | None = None
) -> Path:
    """Score histogram per label (all topics pooled); one 'all frames' histogram without labels."""
    plt = _plt()
    groups: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r.score is None:
            continue
        if labels is None:
            groups["all frames"].append(r.score)
            continue
        t = _time(r, labels.clock)
        name = labels.label_at(r.topic, t) if t is not None else None
        groups[name or "unlabelled"].append(r.score)
    colors = _label_colors(labels)
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 41)
    for name, vals in sorted(groups.items()):
        color = colors.get(name, "tab:green" if labels and name == labels.default_label else None)
        ax.hist(vals, bins=bins, alpha=0.5, label=f"{name} (n={len(vals)})", color=color)
    if thresholds is not None:
        ax.axvline(thresholds.warn, color="orange", ls="--", lw=1, label=f"warn {thresholds.warn:g}")
        ax.axvline(thresholds.error, color="red", ls="--", lw=1, label=f"error {thresholds.error:g}")
    ax.set_xlabel("quality score")
    ax.set_ylabel("frames")
    ax.set_title("score histogram per label" if labels else "score histogram")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
