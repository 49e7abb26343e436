#!/usr/bin/env python3
"""Record every decoded frame's score and embedding of a bag, as ``hirqa bag-eval`` scores it (the same
decoder and Scorer), so that other heads can be replayed on the bag in seconds
(``scripts/replay_gate.py --heads``) instead of a bag evaluation per candidate.

  python scripts/bag_embeddings.py BAG OUT.npz [--model DIR] [--precision auto|fp32|int8]

OUT.npz: topic, stamp_ns, score, embedding (float32) per frame; frames that do not decode are left out.
"""
from __future__ import annotations

import argparse

import numpy as np

from hirqa_ros.bag.decoding import decoded_frames
from hirqa_ros.bag.evaluate import choose_topics
from hirqa_ros.bag.reader import BagReader
from hirqa_ros.scorer import load_scorer


def record(bag: str, out: str, model: str | None = None, precision: str = "auto") -> int:
    """Write ``out`` for ``bag``; returns the number of frames recorded."""
    scorer = load_scorer(model, backend="onnxruntime", device="cpu", batch_size=1,
                         precision=None if precision == "auto" else precision)
    topics, stamps, scores, embs = [], [], [], []
    with BagReader(bag) as reader:
        problems: list[str] = []
        for row, rgb in decoded_frames(reader, choose_topics(reader, None, problems)):
            if rgb is None:
                continue
            inf = scorer.infer([rgb])
            if inf.embeddings is None:
                raise SystemExit("the model gives no embedding: nothing to replay heads on")
            topics.append(row.topic)
            stamps.append(row.stamp_ns)
            scores.append(float(inf.scores[0]))
            embs.append(inf.embeddings[0].astype(np.float32))
    np.savez(out, topic=np.asarray(topics), stamp_ns=np.asarray(stamps, np.int64), score=np.asarray(scores),
             embedding=np.stack(embs))
    return len(topics)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bag")
    ap.add_argument("out")
    ap.add_argument("--model", default=None, help="model directory (default: the installed default)")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "int8"))
    args = ap.parse_args()
    print(f"{record(args.bag, args.out, args.model, args.precision)} frames -> {args.out}")


if __name__ == "__main__":
    main()
