"""``hirqa bench``: latency p50/p95, throughput and peak memory per backend, precision, batch and size."""

from __future__ import annotations

import argparse
import sys

from hirqa_ros.cli.ranges import comma_list, frame_size, ranged
from hirqa_ros.constants import DEFAULT_MIN_IMAGE_SIDE as MIN_SIDE

HELP = (
    "benchmark backends against torch eager fp32: network latency p50/p95, frame-in to score-out "
    "latency (e2e) and host time per frame, throughput, peak memory"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="model directory (default: the installed model; without one, random weights "
        "are used, which is fine for timing)",
    )
    parser.add_argument(
        "--backends",
        type=comma_list(str),
        default=["onnxruntime", "torch", "tensorrt"],
        help="comma list from onnxruntime,torch,tensorrt,torch2trt (default: the first three)",
    )
    parser.add_argument(
        "--precisions",
        type=comma_list(str),
        default=["fp32", "fp16"],
        help="comma list of fp32, fp16, int8 (fp16 where the backend runs it: GPU backends; int8: "
        "onnxruntime on the CPU with the model directory's model.int8.onnx, see `hirqa export --int8`)",
    )
    parser.add_argument("--batches", type=comma_list(ranged(int, 1, 1024)), default=[1, 4, 8],
                        help="comma list, each 1..1024 (default 1,4,8)")
    parser.add_argument(
        "--sizes",
        type=comma_list(frame_size("HxW", MIN_SIDE)),
        default=[(224, 224), (480, 640), (720, 1280)],
        help=f"comma list of HxW, sides {MIN_SIDE}..16384 (default 224x224,480x640,720x1280)",
    )
    parser.add_argument("--iters", type=ranged(int, 1, 1_000_000), default=10,
                        help="timed iterations per row, >= 1 (default 10)")
    parser.add_argument("--warmup", type=ranged(int, 0, 1_000_000), default=2,
                        help="untimed iterations per row, >= 0 (default 2)")
    parser.add_argument(
        "--baseline-model",
        metavar="DIR",
        help="time the torch eager fp32 baseline on this model directory instead (e.g. models/hirqa-s "
        "beside a model on another trunk: speed-ups against today's model from one run); --model's "
        "own torch eager path is then a 'torch' row",
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the best available)")
    parser.add_argument("--jsonl", metavar="FILE", help="also write the rows as JSON lines to FILE")
    parser.add_argument(
        "--host-norm-baseline",
        action="store_true",
        help="with onnxruntime: add a row 'onnxruntime-hostnorm' timing a float-input ONNX of the same "
        "weights with normalisation on the host (how frames were scored before the camera-bytes input)",
    )


def _random_model(folder: str):
    """A model directory of seeded random HiRQA-S weights in ``folder`` (timing only), loaded."""
    import torch

    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.export.model_dir import write_model_dir
    from hirqa_ros.model import HiRQA

    torch.manual_seed(0)
    return load_artifact(write_model_dir(folder, HiRQA("hirqa-s").state_dict(), "hirqa-s",
                                         {"name": "random-bench-weights"}))


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    import platform
    import tempfile

    from tqdm import tqdm

    from hirqa_ros.artifacts import ArtifactError, NoDefaultModelError, load_artifact
    from hirqa_ros.bench import format_table, rows_as_dicts, run_bench

    log = logging.getLogger("hirqa.bench")
    bad = set(args.backends) - {"onnxruntime", "torch", "tensorrt", "torch2trt"}
    if bad or set(args.precisions) - {"fp32", "fp16", "int8"}:
        print(f"error: bad --backends/--precisions ({sorted(bad) or args.precisions})", file=sys.stderr)
        return 2
    tmp = None
    try:
        artifact = load_artifact(args.model)
    except NoDefaultModelError:
        log.warning("no default model installed: benchmarking seeded RANDOM HiRQA-S weights (timing only)")
        tmp = tempfile.TemporaryDirectory(prefix="hirqa-bench-")
        artifact = _random_model(tmp.name)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        base = load_artifact(args.baseline_model) if args.baseline_model else None
    except ArtifactError as exc:
        print(f"error: --baseline-model: {exc}", file=sys.stderr)
        return 2
    with tqdm(desc="bench", unit="config", file=sys.stderr, leave=False) as bar:
        rows, skipped = run_bench(
            artifact,
            args.backends,
            args.precisions,
            args.batches,
            args.sizes,
            args.iters,
            args.warmup,
            args.device,
            progress=lambda: bar.update(1),
            host_norm_baseline=args.host_norm_baseline,
            baseline_artifact=base,
        )
    baseline = f"torch eager fp32 of {base.name} ({base.variant})" if base else "torch eager fp32"
    print(
        f"# hirqa bench: model {artifact.name} ({artifact.variant}), {platform.machine()} "
        f"{platform.processor() or ''} python {platform.python_version()}; {args.iters} iters, "
        f"{args.warmup} warm-up; baseline = {baseline}; net = the network call on a ready batch "
        "(uint8 NHWC; float NCHW for onnxruntime-hostnorm), e2e = separate HxWx3 frames in -> scores out "
        "(per batch), host = e2e outside the backend"
    )
    print(format_table(rows))
    for note in skipped:
        print(f"# skipped {note}")
    if args.jsonl:
        from hirqa_ros.files import atomic_write_bytes

        text = "".join(json.dumps(r) + "\n" for r in rows_as_dicts(rows))
        try:
            atomic_write_bytes(args.jsonl, text.encode())
        except OSError as exc:
            print(f"error: --jsonl {args.jsonl}: cannot write ({exc.strerror or exc})", file=sys.stderr)
            return 2
    if tmp is not None:
        tmp.cleanup()
    return 0
