"""Clipart1k, Watercolor2k, Comic2k (Inoue et al., CVPR 2018) → clipart_test, watercolor_test,
comic_test.

Each dataset is a VOC-layout directory (``Annotations/``, ``JPEGImages/``,
``ImageSets/Main/test.txt``) given with ``--raw``. Boxes are mapped onto the 20 VOC classes and
every split carries all 20 categories, so category ids match ``voc07_test``; Watercolor2k and
Comic2k only annotate bicycle, bird, car, cat, dog and person (the other 14 classes have no
boxes and are skipped when averaging AP). Same coordinate convention and policy as VOC: see
:mod:`benchmark.data.sources.vocxml` and ``datasets/clipart_watercolor_comic.md``.
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
    with_corruptions,
)
from benchmark.data.sources.vocxml import build_coco, load_voc_set
from benchmark.data.split import PreparedSplit

PUBLISHED = "https://naoto0804.github.io/cross_domain_detection/"

#: dataset -> classes its annotations use (the JSON still lists all 20 VOC classes).
ANNOTATED_CLASSES: dict[str, tuple[str, ...]] = {
    "clipart": VOC_CLASSES,
    "watercolor": ("bicycle", "bird", "car", "cat", "dog", "person"),
    "comic": ("bicycle", "bird", "car", "cat", "dog", "person"),
}


DISPLAY = {"clipart": "Clipart1k", "watercolor": "Watercolor2k", "comic": "Comic2k"}


def prepare_cross_domain(dataset: str, raw: Path, opts: Options | None = None,
                         *, image_set: str = "test") -> list[PreparedSplit]:
    """Convert ``<raw>/ImageSets/Main/<image_set>.txt`` of one dataset into ``<dataset>_test``."""
    if dataset not in ANNOTATED_CLASSES:
        raise ValueError(f"unknown cross-domain dataset {dataset!r}")
    opts = opts or Options()
    raw = Path(raw)
    name = f"{dataset}_{image_set}"
    hasher = SourceHasher(raw)
    vset = load_voc_set(raw, image_set, classes=VOC_CLASSES, rel_prefix="", image_root=raw,
                        opts=opts, hasher=hasher, published=PUBLISHED)
    check_count(name, len(vset.records), opts, missing=vset.missing)
    builder, issues = build_coco([vset], VOC_CLASSES)
    split = finish_split(
        name, builder, dataset=dataset, domain=dataset, image_root=raw, opts=opts, issues=issues,
        sources=hasher.manifest_extra(vset.sources),
        extra={"box_convention": "voc1based_minus1",
               "annotated_classes": list(ANNOTATED_CLASSES[dataset])},
    )
    return [split]


def _register(dataset: str) -> None:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_common_arguments(
            parser, f"the {dataset} directory (Annotations/, JPEGImages/, ImageSets/Main/test.txt)"
        )

    def prepare(args: argparse.Namespace) -> list[PreparedSplit]:
        return with_corruptions(
            args, prepare_cross_domain(dataset, args.raw, Options.from_args(args)))

    prepare.__name__ = f"prepare_{dataset}"
    prepare.__doc__ = f"{DISPLAY[dataset]} test split (VOC XML) -> {dataset}_test (20 VOC classes)."
    preparer(dataset, add_arguments=add_arguments)(prepare)


for _name in ANNOTATED_CLASSES:
    _register(_name)
