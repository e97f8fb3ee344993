"""Pascal VOC 2007 + 2012 → voc07_trainval, voc12_trainval, voc0712_trainval, voc07_test.

``--raw`` is the ``VOCdevkit`` directory holding ``VOC2007/`` (trainval and test tars extracted
into it) and ``VOC2012/``. All four splits reference the images in place with ``VOCdevkit`` as
image root (file names ``VOC2007/JPEGImages/000005.jpg``). ``difficult`` objects are kept with
``difficult: 1``; evaluation ignores them the way VOC does. See ``datasets/voc.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.data import preparer
from benchmark.data.sources.common import (
    VOC_CLASSES,
    Options,
    SourceHasher,
    add_common_arguments,
    check_count,
    finish_split,
    parse_list_arg,
    require_dir,
    with_corruptions,
)
from benchmark.data.sources.vocxml import VocSet, build_coco, load_voc_set
from benchmark.data.split import PreparedSplit

PUBLISHED = "http://host.robots.ox.ac.uk/pascal/VOC/"

#: split name -> the (year, image set) pairs it concatenates, in order.
VOC_SPLITS: dict[str, tuple[tuple[str, str], ...]] = {
    "voc07_trainval": (("2007", "trainval"),),
    "voc12_trainval": (("2012", "trainval"),),
    "voc0712_trainval": (("2007", "trainval"), ("2012", "trainval")),
    "voc07_test": (("2007", "test"),),
}


def prepare_voc(raw: Path, opts: Options | None = None, *,
                splits: list[str] | None = None) -> list[PreparedSplit]:
    opts = opts or Options()
    raw = Path(raw)
    names = splits or list(VOC_SPLITS)
    require_dir(raw, "the VOCdevkit directory (holding VOC2007/ and VOC2012/)", PUBLISHED)
    hasher = SourceHasher(raw)
    loaded: dict[tuple[str, str], VocSet] = {}
    for name in names:
        for year, image_set in VOC_SPLITS[name]:
            if (year, image_set) not in loaded:
                loaded[(year, image_set)] = load_voc_set(
                    raw / f"VOC{year}", image_set, classes=VOC_CLASSES, rel_prefix=f"VOC{year}/",
                    image_root=raw, opts=opts, hasher=hasher, published=PUBLISHED,
                )
    # Check every count before writing anything.
    for name in names:
        sets = [loaded[k] for k in VOC_SPLITS[name]]
        found = sum(len(s.records) for s in sets)
        check_count(name, found, opts, missing=[m for s in sets for m in s.missing])
    out = []
    for name in names:
        sets = [loaded[k] for k in VOC_SPLITS[name]]
        builder, issues = build_coco(sets, VOC_CLASSES)
        out.append(finish_split(
            name, builder, dataset="voc", domain="pascal", image_root=raw, opts=opts,
            issues=issues, sources=hasher.manifest_extra(p for s in sets for p in s.sources),
            extra={"box_convention": "voc1based_minus1", "image_sets": [s.label for s in sets]},
        ))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "the VOCdevkit directory (holding VOC2007/ and VOC2012/)")
    parser.add_argument(
        "--splits", default=None,
        help=f"comma-separated subset of {','.join(VOC_SPLITS)} (default: all; "
             "voc07_trainval,voc07_test need only VOC2007)",
    )


@preparer("voc", add_arguments=add_arguments)
def prepare(args: argparse.Namespace) -> list[PreparedSplit]:
    """Pascal VOC 2007/2012 XML -> voc07_trainval, voc12_trainval, voc0712_trainval, voc07_test."""
    splits = parse_list_arg(getattr(args, "splits", None), list(VOC_SPLITS), "splits")
    return with_corruptions(args, prepare_voc(args.raw, Options.from_args(args), splits=splits))
