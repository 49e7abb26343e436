"""Fault-class accuracy on a synthetic protocol run: per distortion type, per class, confusion matrix.

The true class of a ladder image is ``hirqa_ros.heads.fault_class_of(type, level)``; the prediction is
the fault class the doors publish (``ProtocolScores.published``: ``faults.gated_fault`` of the frame's
level and the head, so a frame the gate keeps is ``none``) when the score_fn ran the pipeline
(``evaluation.model_fn``), else the arg-max of the head's probabilities (``ProtocolScores.aux``; fitting
heads on embeddings, where there is no gate). With both, the head's own arg-max is a second, named number
(``head_argmax``). Accuracy is reported for drop-level images (severity >= 3) and, apart, for the
pristine views.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hirqa_ros.evaluation.synthetic import DROP_MIN_LEVEL, ProtocolScores
from hirqa_ros.heads import FAULT_CLASSES, fault_class_of


def fault_report(ps: ProtocolScores, name: str = "model", min_level: int = DROP_MIN_LEVEL,
                 classes: tuple[str, ...] = FAULT_CLASSES) -> dict:
    """Accuracy per type, per class and pooled for levels >= ``min_level``; pristine ``none`` rate;
    confusion matrix ``confusion[true][pred]`` (counts) over those images and the pristine views."""
    probs = ps.aux.get(name)
    if probs is None:
        raise ValueError(f"score_fn {name!r} returned no class probabilities")
    if probs.shape[-1] != len(classes):
        raise ValueError(f"{probs.shape[-1]} probabilities per image for {len(classes)} classes")
    argmax = probs.argmax(axis=-1)  # (V, T, 6)
    published = ps.published.get(name)
    rep = _accuracy(argmax if published is None else published, ps.types, classes, min_level)
    rep["basis"] = "head_argmax" if published is None else "published"
    if published is not None:
        head = _accuracy(argmax, ps.types, classes, min_level)
        rep["head_argmax"] = {k: head[k] for k in ("accuracy_drop_level", "pristine_none")}
    return rep


def _accuracy(pred: np.ndarray, types: list[str], classes: tuple[str, ...], min_level: int) -> dict:
    """The report's numbers for predicted class indices ``pred`` (views, types, 6 levels)."""
    index = {c: i for i, c in enumerate(classes)}
    conf = np.zeros((len(classes), len(classes)), np.int64)
    per_type: dict[str, dict] = {}
    for t, type_name in enumerate(types):
        truth = index[fault_class_of(type_name, min_level)]
        p = pred[:, t, min_level:].reshape(-1)
        np.add.at(conf, (np.full(p.size, truth), p), 1)
        per_type[type_name] = {
            "class": classes[truth], "accuracy": float((p == truth).mean()), "n": int(p.size),
            "by_level": [float((pred[:, t, lv] == truth).mean()) for lv in range(min_level, 6)],
        }
    pristine = pred[:, 0, 0]
    np.add.at(conf, (np.zeros(pristine.size, np.int64), pristine), 1)
    per_class = {}
    for i, c in enumerate(classes):
        row = conf[i]  # the pristine views are counted in the `none` row
        if row.sum():
            per_class[c] = {"accuracy": float(row[i] / row.sum()), "n": int(row.sum())}
    drop_total = sum(d["n"] for d in per_type.values())
    drop_right = sum(d["accuracy"] * d["n"] for d in per_type.values())
    return {
        "min_level": min_level,
        "classes": list(classes),
        "accuracy_drop_level": float(drop_right / drop_total) if drop_total else float("nan"),
        "pristine_none": float((pristine == 0).mean()),
        "per_type": per_type,
        "per_class": per_class,
        "confusion": conf.tolist(),
    }


def format_fault_report(rep: dict) -> str:
    what = "as the doors publish it (gated)" if rep.get("basis") == "published" else "the head's arg-max"
    lines = [f"fault class {what}, images with severity >= {rep['min_level']}: "
             f"{rep['accuracy_drop_level']:.1%} right; "
             f"pristine frames called `none`: {rep['pristine_none']:.1%}"]
    head = rep.get("head_argmax")
    if head:
        lines.append(f"  (the head's own arg-max, ungated: {head['accuracy_drop_level']:.1%} right, pristine "
                     f"`none` {head['pristine_none']:.1%})")
    lines.append(f"{'type':22s}{'class':>14s}{'accuracy':>10s}")
    for t, d in rep["per_type"].items():
        lines.append(f"  {t:20s}{d['class']:>14s}{d['accuracy']:>10.3f}")
    lines.append(f"{'class (incl. pristine as none)':32s}{'accuracy':>10s}{'n':>6s}")
    for c, d in rep["per_class"].items():
        lines.append(f"  {c:30s}{d['accuracy']:>10.3f}{d['n']:>6d}")
    return "\n".join(lines)


def plot_confusion(rep: dict, path: str | Path) -> None:
    """Row-normalised confusion matrix (true class rows, predicted columns) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = rep["classes"]
    conf = np.asarray(rep["confusion"], np.float64)
    keep = conf.sum(axis=1) > 0
    norm = conf[keep] / conf[keep].sum(axis=1, keepdims=True)
    rows = [c for c, k in zip(classes, keep) if k]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(classes), 1.2 + 0.55 * len(rows)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(norm.shape[0]):
        for j in range(norm.shape[1]):
            if conf[keep][i, j]:
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=40, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted fault class")
    ax.set_ylabel("true class")
    ax.set_title(f"Fault class, severity >= {rep['min_level']} and pristine "
                 f"({rep['accuracy_drop_level']:.1%} right)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
