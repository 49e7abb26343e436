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
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="model directory to write; an existing one is replaced only with --force")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --out whole (int8 model, fault head and calibrated card "
                        "included), once the new directory is complete")
    parser.add_argument(
        "--fp16-storage",
        action="store_true",
        help="store weights as fp16 (half the size; default keeps the authors' fp32 values)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hirqa_ros.export.official import OFFICIAL_LICENCE, import_official
    from hirqa_ros.files import describe_existing, staged_output
    from hirqa_ros.interrupts import interrupt_status, terminate_like_interrupt

    ckpt, out = Path(args.ckpt), Path(args.out)
    if not ckpt.is_file():
        why = "no such file" if not ckpt.exists() else "not a regular file"
        print(f"error: --ckpt {ckpt}: {why}", file=sys.stderr)
        return 2
    if out.exists() and not out.is_dir():
        print(f"error: --out {describe_existing(out)}, not a folder; choose another --out", file=sys.stderr)
        return 2
    if out.is_dir() and any(out.iterdir()) and not args.force:
        print(f"error: --out {describe_existing(out)}; it would be replaced whole (its card, thresholds, "
              "int8 model and fault head included): pass --force to replace it, or choose another --out",
              file=sys.stderr)
        return 2
    try:
        with terminate_like_interrupt(), staged_output(out) as work:  # old one kept till the new is whole
            import_official(args.ckpt, args.variant, work,
                            storage="float16" if args.fp16_storage else "float32")
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write --out {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"interrupted: nothing written; {out} left as it was", file=sys.stderr)
        return interrupt_status(exc)
    print(f"wrote {out}; score with: hirqa score --model {out} IMAGES...")
    print(f"licence of these weights: {OFFICIAL_LICENCE}")
    return 0
