"""Prepare datasets and their corrupted copies.

    python -m benchmark.prepare demo [--data-root DIR] [--seed N] [--corruptions benchmark]
                                     [--severities 3] [--workers N]
    python -m benchmark.prepare corrupt SPLIT [--corruptions all|benchmark|heldout|LIST]
                                     [--severities 1-5] [--workers N] [--data-root DIR] [--seed N]
    python -m benchmark.prepare voc --raw PATH ...      (converters registered in benchmark.data)
    python -m benchmark.prepare voc --download --raw DIR   (fetch the public archives into DIR,
                                     verified and unpacked, then convert; see benchmark.acquire)

Errors the user can fix print one line ``error: ...`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from benchmark.acquire import ManualDownload
from benchmark.data import PREPARER_ARGUMENTS, load_preparers
from benchmark.data.archives import DATASETS
from benchmark.data.split import PreparedSplit
from benchmark.errors import BenchmarkError, ConfigError


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _add_common(parser: argparse.ArgumentParser, *, corruptions: str, severities: str) -> None:
    parser.add_argument("--data-root", type=Path, default=None,
                        help="where prepared splits live (default: $BENCH_DATA or datasets/data)")
    parser.add_argument("--seed", type=int, default=0,
                        help="generation seed; also the global seed of the corruptions (0)")
    parser.add_argument("--corruptions", default=corruptions,
                        help="all | benchmark | heldout | none | comma list of names "
                        "(default: %(default)s)")
    parser.add_argument("--severities", default=severities,
                        help="e.g. 1-5, 3 or 1,3,5 (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=_default_workers(),
                        help="corruption worker processes (default: all usable cores)")
    parser.add_argument("--quiet", dest="progress", action="store_false",
                        help="no progress bars")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from benchmark.commandline import HelpFormatter
    from benchmark.commandline import parser as command_parser

    parser = command_parser(
        "python -m benchmark.prepare", "Prepare benchmark datasets: convert a raw dataset "
        "into prepared splits (or download it first: --download), or corrupt a split.",
        example="python -m benchmark.prepare voc --download --raw data/raw/voc",
        exits="0 prepared; 1 files to place by hand (a dataset behind a login); 2 bad input "
              "or a failed download / conversion")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{DATASET,corrupt}")
    add = partial(sub.add_parser, formatter_class=HelpFormatter)
    preparers = load_preparers()
    for name in preparers:
        doc = (preparers.get(name).__doc__ or "").strip().splitlines()
        p = add(name, help=doc[0] if doc else f"prepare {name}")
        _add_common(p, corruptions="none", severities="1-5")
        if name in PREPARER_ARGUMENTS:
            PREPARER_ARGUMENTS[name](p)
        if name in DATASETS:
            _add_download(p)
        p.set_defaults(run=preparers.get(name))
    p = add("corrupt", help="write corrupted copies <SPLIT>-C.<corruption>.<severity>")
    p.add_argument("split", metavar="SPLIT", help="name of a prepared split")
    _add_common(p, corruptions="benchmark", severities="1-5")
    p.add_argument("--channel-order", choices=("rgb", "bgr"), default="rgb",
                   help="corrupt the RGB array (imagecorruptions) or the BGR one (mmdetection's "
                   "robustness pipeline): SPLIT-Cbgr.<corruption>.<severity>")
    p.set_defaults(run=_corrupt)
    return parser


def _add_download(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--download", action="store_true",
                        help="fetch the dataset's archives into --raw DIR first (resumable, "
                        "checksum-verified, unpacked safely), then convert; datasets behind a "
                        "login print the steps to fetch them by hand")
    parser.add_argument("--mirror", help="with --download: base URL serving every archive by "
                        "its file name (default $BENCH_MIRROR; else the publisher's URL)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="with --download: seconds without data before giving up")


def _download(args: argparse.Namespace) -> None:
    """Fetch and unpack the archives into ``args.raw``; point ``args.raw`` at what the
    converter reads."""
    from benchmark.acquire.datasets import chosen_splits, fetch_raw  # requests: on demand

    values = getattr(args, "splits", None) or getattr(args, "domains", None)
    values = [v.strip() for v in values.split(",") if v.strip()] if values else None
    args.raw = fetch_raw(args.command, args.raw, splits=chosen_splits(args.command, values),
                         mirror=args.mirror, timeout=args.timeout, progress=args.progress)


def _corrupt(args: argparse.Namespace) -> list[PreparedSplit]:
    from benchmark.data.corrupt import build_corrupted_splits, corruption_names, parse_severities
    from benchmark.data.split import load_split

    corruptions = corruption_names(args.corruptions)
    severities = parse_severities(args.severities)
    source = load_split(args.split, args.data_root)
    return build_corrupted_splits(
        source, corruptions, severities, root=args.data_root, global_seed=args.seed,
        workers=args.workers, progress=args.progress, channel_order=args.channel_order,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.workers < 1:
            raise ConfigError(f"--workers={args.workers}: must be at least 1")
        if getattr(args, "download", False):
            _download(args)
        splits = args.run(args)
    except ManualDownload as e:
        print(e)
        return 1
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for split in splits:
        m = split.manifest
        print(f"{split.name}: {m.get('num_images')} images, {m.get('num_boxes')} boxes"
              f" -> {split.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
