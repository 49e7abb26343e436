"""``hirqa import-official``: the authors' released HiRQA / HiRQA-S checkpoint -> a model directory."""

from __future__ import annotations

import argparse
import sys

HELP = "turn the authors' released HiRQA-S / HiRQA .pth checkpoint into a model directory (--model DIR)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ckpt",
        required=True,
        metavar="FILE",
        help="the authors' .pth (a dict with 'model_state_dict'), e.g. HiRQA-S.pth",
    )
    parser.add_argument(
        "--variant",
        required=True,
        choices=("hirqa-s", "hirqa"),
        help="hirqa-s = ResNet-18 HiRQA-S, hirqa = ResNet-50 HiRQA",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    parser.add_argument(
        "--fp16-storage",
        action="store_true",
        help="store weights as fp16 (half the size; default keeps the authors' fp32 values)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hirqa_ros.export import OFFICIAL_LICENCE, import_official

    ckpt = Path(args.ckpt)
    if not ckpt.is_file():
        why = "no such file" if not ckpt.exists() else "not a regular file"
        print(f"error: --ckpt {ckpt}: {why}", file=sys.stderr)
        return 2
    try:
        out = import_official(
            args.ckpt, args.variant, args.out, storage="float16" if args.fp16_storage else "float32"
        )
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}; score with: hirqa score --model {out} IMAGES...")
    print(f"licence of these weights: {OFFICIAL_LICENCE}")
    return 0
