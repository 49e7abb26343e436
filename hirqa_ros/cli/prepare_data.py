"""``hirqa prepare-data``: build the pristine training/validation photo set (Debian wallpapers or a
folder)."""

from __future__ import annotations

import argparse
import logging

from hirqa_ros.cli.ranges import ranged

HELP = "build the pristine photo set (train/val split, manifest, licences) from Debian wallpapers or a folder"

log = logging.getLogger("hirqa.prepare_data")


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--debs",
        metavar="DIR",
        default=None,
        help="folder holding the wallpaper .debs; missing ones are fetched with apt-get download",
    )
    src.add_argument(
        "--folder",
        metavar="DIR",
        default=None,
        help="use every image under DIR instead of the Debian packages (e.g. KADIS-700k, DIV2K)",
    )
    p.add_argument("--out", default="data/pristine", help="output folder (default: data/pristine)")
    p.add_argument(
        "--cache", default=None, help="where apt-get download puts .debs (default: OUT/debs_cache)"
    )
    p.add_argument(
        "--packages",
        default=None,
        help="comma-separated Debian packages (default: the wallpaper packages of DESIGN.md)",
    )
    p.add_argument("--round3", action="store_true",
                   help="also the round-3 photo packages (gcompris-qt-data photos from its .rcc files, "
                        "lxqt-themes, palapeli-data, darknet) with a fixed hold-out by name hash "
                        "(default 15 %%; the wallpaper photos keep their split)")
    p.add_argument("--val-fraction", type=ranged(float, 0.0, 1.0, lo_open=True, hi_open=True), default=None,
                   help="share of content held out (default 0.2; 0.15 with --round3)")
    p.add_argument(
        "--max-side", type=ranged(int, 16, 16384), default=1600,
        help="longest side of the written JPEGs (default 1600)"
    )
    p.add_argument(
        "--keep-all",
        action="store_true",
        help="skip the photo filter (only dedupe, resize, split): for folders known to hold photos",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hirqa_ros.training.data.prepare import (
        DEFAULT_PACKAGES,
        ROUND3_PACKAGES,
        ROUND3_VAL_FRACTION,
        prepare,
    )

    val_fraction = args.val_fraction or (ROUND3_VAL_FRACTION if args.round3 else 0.2)
    if args.folder and not Path(args.folder).is_dir():
        log.error("--folder %s is not a directory", args.folder)
        return 2
    packages = tuple(s.strip() for s in args.packages.split(",")) if args.packages else DEFAULT_PACKAGES
    if args.round3:
        packages = tuple(dict.fromkeys((*packages, *ROUND3_PACKAGES)))
    try:
        m = prepare(
            Path(args.out),
            debs_dir=Path(args.debs) if args.debs else None,
            folder=Path(args.folder) if args.folder else None,
            packages=packages,
            cache=Path(args.cache) if args.cache else None,
            val_fraction=val_fraction,
            max_side=args.max_side,
            keep_all=args.keep_all,
            split_rule="name" if args.round3 else "group",
        )
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    c = m["counts"]
    print(
        f"{args.out}: {c['train']} train + {c['val']} val photos "
        f"({c['candidates']} candidates, {c['excluded']} excluded, {c['duplicates']} duplicates); "
        f"see {args.out}/manifest.json"
    )
    for pkg, n in c.get("per_package", {}).items():
        print(f"  {pkg}: {n['train']} train + {n['val']} val")
    return 0 if c["train"] else 1
