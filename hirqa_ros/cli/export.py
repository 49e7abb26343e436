"""``hirqa export``: ONNX (fp32/fp16), a TensorRT engine or a torch2trt module from a model directory."""

from __future__ import annotations

import argparse
import sys

from hirqa_ros.cli.ranges import frame_size, ranged
from hirqa_ros.constants import DEFAULT_CALIBRATION_FRAMES
from hirqa_ros.interrupts import interrupt_status, terminate_like_interrupt

HELP = ("export a model directory to ONNX, a TensorRT engine (.plan) or a torch2trt module; refresh "
        "its ONNX; add an int8 model for CPUs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", metavar="DIR", help="model directory (default: the installed default model)"
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="re-export the model directory's own model.onnx from its weights with the current input "
        "contract (uint8 NHWC camera bytes in; 'score' and 'embedding' out) and update its cards "
        "(sha256, input contract); weights, thresholds and metrics are kept",
    )
    _add_int8_arguments(parser)
    _add_onnx_arguments(parser)
    _add_engine_arguments(parser)


def _add_int8_arguments(parser: argparse.ArgumentParser) -> None:
    """--int8 and its calibration and accuracy-protocol options."""
    q = parser.add_argument_group(
        "int8 (CPU)",
        "--int8 quantises the directory's model.onnx to model.int8.onnx (static QDQ: int8 per-channel "
        "weights, uint8 activations), evaluates fp32 and int8 side by side on the held-out protocol that "
        "calibrated the fp32 thresholds, calibrates int8's own thresholds the same way and records all of "
        "it (sha256, accuracy per type, CPU-default decision) under 'int8' in the cards",
    )
    q.add_argument("--int8", action="store_true",
                   help="add (or remake) model.int8.onnx in the model directory")
    q.add_argument("--calib-images", metavar="DIR", default=None,
                   help="TRAINING photos the calibration frames are cut from (default: "
                        "data/pristine_native/train, else data/pristine/train); never the evaluation photos")
    q.add_argument("--calib-frames", type=ranged(int, 1, 100_000), default=DEFAULT_CALIBRATION_FRAMES,
                   metavar="N",
                   help="calibration frames: 640x480 and 1280x720 cuts, half of them degraded "
                        f"(default {DEFAULT_CALIBRATION_FRAMES})")
    q.add_argument("--keep-fp32", default="first-conv,attention,head", metavar="PARTS",
                   help="comma list of parts left in fp32: first-conv, attention, head; 'none' = quantise "
                        "all (default: all three, which measured closest to fp32)")
    q.add_argument("--eval-images", metavar="DIR", default=None,
                   help="held-out photos of the accuracy report (default: those of the card's fp32 "
                        "calibration protocol)")
    q.add_argument("--eval-max-images", type=ranged(int, 1, 10_000_000), default=None, metavar="N",
                   help="use at most N evaluation photos")
    q.add_argument("--eval-full-frame", action=argparse.BooleanOptionalAction, default=None,
                   help="accuracy protocol: whole camera frames (640x480, 1280x720, 1920x1080) as "
                        "`hirqa eval --full-frame` (default: whichever calibrated the card's fp32 "
                        "thresholds: full frame when the card has metrics.validation_full_frame)")
    q.add_argument("--eval-crop", type=ranged(int, 0, 16384), default=None, metavar="PX",
                   help="square view size of the accuracy protocol; 0 = whole frames (default: the card's "
                        "fp32 calibration protocol's, 256)")
    q.add_argument("--eval-resize-side", type=ranged(int, 0, 16384), default=None, metavar="PX",
                   help="shorter side photos are shrunk to before cutting views, e.g. 480 with --eval-crop 0 "
                        "for whole 480p-class frames (default: the card's protocol's, 512)")
    q.add_argument("--eval-frame-sizes", nargs="+", default=None, metavar="WxH",
                   help="with the full-frame protocol: these camera frame sizes (default 640x480 1280x720 "
                        "1920x1080), e.g. 640x480 when the fp32 thresholds came from `hirqa heads fit`")
    q.add_argument("--eval-physical-order", nargs="?", type=ranged(float, 0.0, 64.0, lo_open=True), const=1.5,
                   default=None, metavar="SIGMA",
                   help="with the full-frame protocol: frames in a camera's physical order with a sensor "
                        "noise floor of SIGMA grey levels (default 1.5), as `hirqa eval --physical-order`")


def _add_onnx_arguments(parser: argparse.ArgumentParser) -> None:
    """--onnx and the options of the ONNX files written."""
    parser.add_argument(
        "--onnx",
        metavar="OUT.onnx",
        help="write ONNX (opset 17): input 'frames' uint8 NHWC (dynamic batch/height/width), "
        "normalised inside the graph; outputs 'score' (N,) and 'embedding' (N, 1024)",
    )
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="with --onnx: fp16 network (normalisation, final linear + sigmoid stay fp32)",
    )
    parser.add_argument(
        "--bgr",
        action="store_true",
        help="with --onnx/--refresh: the input takes BGR bytes (folded into the first convolution, free)",
    )
    parser.add_argument(
        "--float-input",
        action="store_true",
        help="with --onnx: input 'image' float NCHW normalised by the caller (the training entry point, "
        "as ONNX files before the camera-bytes input)",
    )
    parser.add_argument(
        "--fp16-onnx-into-model",
        action="store_true",
        help="write model_fp16.onnx into the model directory and list it in its card: TensorRT >= 10 "
        "builds fp16 engines strongly typed from it (TensorRT 11 needs it; the robot never exports)",
    )


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """--engine / --torch2trt and the engine profile."""
    parser.add_argument(
        "--engine", metavar="OUT.plan", help="build a TensorRT engine (needs TensorRT + CUDA)"
    )
    parser.add_argument("--precision", default="fp16", choices=("fp16", "fp32"), help="engine precision")
    parser.add_argument(
        "--torch2trt", metavar="OUT.pth", help="convert with torch2trt and save its state dict"
    )
    parser.add_argument(
        "--input-policy",
        default=None,
        metavar="P",
        help="policy the engine profile must cover (default: the model card's)",
    )
    parser.add_argument("--max-batch", type=ranged(int, 1, 1024), default=8,
                        help="engine profile: largest batch, 1..1024")
    parser.add_argument(
        "--max-hw",
        type=frame_size("HxW"),
        default=None,
        metavar="HxW",
        help="engine profile for 'native': largest frame (default 1088x1920)",
    )
    parser.add_argument(
        "--opt-hw",
        type=frame_size("HxW"),
        default=None,
        metavar="HxW",
        help="engine profile: the size to optimise for (default 480x640)",
    )


def run(args: argparse.Namespace) -> int:
    from hirqa_ros.artifacts import ArtifactError, load_artifact
    from hirqa_ros.backends import probe

    if not (args.onnx or args.engine or args.torch2trt or args.refresh or args.fp16_onnx_into_model
            or args.int8):
        print(
            "error: nothing to do: give --refresh, --int8, --onnx, --fp16-onnx-into-model, --engine and/or "
            "--torch2trt",
            file=sys.stderr,
        )
        return 2
    parts = [p.strip() for p in args.keep_fp32.split(",") if p.strip() and p.strip() != "none"]
    if args.int8:
        from hirqa_ros.export.int8 import KEEP_FP32_PARTS

        bad = sorted(set(parts) - set(KEEP_FP32_PARTS))
        if bad:
            print(f"error: --keep-fp32 takes {', '.join(KEEP_FP32_PARTS)} or none (got {bad})",
                  file=sys.stderr)
            return 2
    if args.bgr and args.float_input:
        print("error: --bgr needs the camera-bytes input; drop --float-input", file=sys.stderr)
        return 2
    order = "BGR" if args.bgr else "RGB"
    try:
        artifact = load_artifact(args.model)
        if args.refresh or args.int8 or args.fp16_onnx_into_model:
            with terminate_like_interrupt():
                artifact = _edit_model_dir(args, artifact.path, order, parts)
    except (ArtifactError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {exc.filename or 'the output'}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("interrupted: the model directory is left as it was", file=sys.stderr)
        return interrupt_status(exc)
    if args.onnx:
        from hirqa_ros.export.onnx import export_onnx

        try:
            path = export_onnx(artifact.torch_model(), args.onnx, fp16=args.fp16, frames=not args.float_input,
                               channel_order=order)
        except OSError as exc:
            print(f"error: cannot write --onnx {args.onnx}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        what = "float NCHW 'image'" if args.float_input else f"uint8 NHWC {order} 'frames'"
        print(f"wrote {path} ({'fp16' if args.fp16 else 'fp32'}, opset 17, input {what})")
    profile_opts = {
        "input_policy": args.input_policy or artifact.input_policy,
        "max_batch": args.max_batch,
        "max_hw": args.max_hw,
        "opt_hw": args.opt_hw,
    }
    for what, out in (("tensorrt", args.engine), ("torch2trt", args.torch2trt)):
        if not out:
            continue
        p = probe(what, "cuda")
        if not p.ok:
            print(f"error: cannot build a {what} artefact here: {p}", file=sys.stderr)
            return 2
        if what == "tensorrt":
            from hirqa_ros.backends.tensorrt_backend import build_engine_file

            path = build_engine_file(artifact, out, precision=args.precision, **profile_opts)
        else:
            from hirqa_ros.backends.torch2trt_backend import Torch2TRTBackend

            path = Torch2TRTBackend(
                artifact,
                precision=args.precision,
                module_path=out,
                force_engine_update=True,
                warmup=1,
                **profile_opts,
            ).module_path
        print(f"wrote {path} ({what}, {args.precision}); it runs only on this GPU model and {what} version")
    return 0


def _edit_model_dir(args: argparse.Namespace, folder, order: str, parts: list[str]):
    """--refresh, --int8 and --fp16-onnx-into-model on a copy of the model directory, moved into
    place only when every step is done (a failure or Ctrl-C leaves the directory as it was); returns
    the reloaded artifact."""
    import os

    from hirqa_ros.artifacts import load_artifact
    from hirqa_ros.files import staged_output

    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(13, "permission denied (the model directory is read-only)", str(folder))
    with staged_output(folder, copy_of=folder) as work:
        if args.refresh:
            from hirqa_ros.export.model_dir import refresh_model_dir

            refresh_model_dir(work, channel_order=order)
            print(f"refreshed {folder / 'model.onnx'}: input 'frames' uint8 NHWC {order}; outputs score, "
                  "embedding")
        if args.int8:
            from hirqa_ros.cli.eval import frame_sizes
            from hirqa_ros.export.int8 import add_int8

            sizes = frame_sizes(args.eval_frame_sizes) if args.eval_frame_sizes else None
            overrides = {k: v for k, v in (("crop", args.eval_crop), ("resize_side", args.eval_resize_side),
                                           ("frame_sizes", sizes), ("noise_floor", args.eval_physical_order))
                         if v is not None}
            entry = add_int8(work, args.calib_images, args.eval_images, args.calib_frames, parts,
                             max_images=args.eval_max_images, progress=True, protocol=overrides,
                             full_frame=args.eval_full_frame)
            p, t = entry["accuracy"]["pooled"], entry["thresholds"]
            print(f"wrote {folder / 'model.int8.onnx'}; int8 thresholds warn {t['warn']} error {t['error']}; "
                  + "; ".join(f"pooled {m} fp32 {v['fp32']:.4f} int8 {v['int8']:.4f}" for m, v in p.items())
                  + f"\nCPU default (backend auto): {'yes' if entry['cpu_default'] else 'NO'}: "
                  f"{entry['decision']}")
        if args.fp16_onnx_into_model:
            from hirqa_ros.export.tensorrt_onnx import add_fp16_onnx

            path = add_fp16_onnx(work)
            print(f"wrote {folder / path.name} (fp16 network for TensorRT) and listed it in "
                  f"{folder / 'model.yaml'}")
    return load_artifact(folder)
