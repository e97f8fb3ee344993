"""COCO-O (Mao et al., ICCV 2023) → coco_o_<domain> for sketch, cartoon, painting, weather,
handmake, tattoo.

``--raw`` is the unzipped ``ood_coco`` directory: one COCO-val-layout folder per domain,
``<domain>/val2017/*.jpg`` + ``<domain>/annotations/instances_val2017.json``. Each domain is
converted exactly like COCO val2017 (:func:`benchmark.data.sources.coco.load_coco_file`), so
category ids 1..80 match ``coco_val2017``. The published total (6,782 images) is checked when
all six domains are prepared in one call; the README gives no per-domain counts, so those are
reported, not checked. See ``datasets/coco_o.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.data import preparer
from benchmark.data.sources.coco import load_coco_file
from benchmark.data.sources.common import (
    Options,
    SourceHasher,
    add_common_arguments,
    check_total,
    finish_split,
    parse_list_arg,
    require_dir,
    require_file,
    with_corruptions,
)
from benchmark.data.split import PreparedSplit

PUBLISHED = "https://github.com/alibaba/easyrobust/tree/main/benchmarks/coco_o (ood_coco.zip)"
COCO_O_DOMAINS = ("sketch", "cartoon", "painting", "weather", "handmake", "tattoo")


def prepare_coco_o(raw: Path, opts: Options | None = None, *,
                   domains: list[str] | None = None) -> list[PreparedSplit]:
    opts = opts or Options()
    raw = Path(raw)
    require_dir(raw, f"the COCO-O root (one folder per domain: {', '.join(COCO_O_DOMAINS)})",
                PUBLISHED)
    chosen = domains or list(COCO_O_DOMAINS)
    loaded = []
    for domain in chosen:
        name = f"coco_o_{domain}"
        ann_file = require_file(raw / domain / "annotations" / "instances_val2017.json",
                                f"COCO-O {domain} annotations", PUBLISHED)
        image_root = require_dir(raw / domain / "val2017", f"COCO-O {domain} images", PUBLISHED)
        hasher = SourceHasher(raw)
        builder, issues, missing, extra = load_coco_file(name, ann_file, image_root, opts, hasher)
        if extra:
            opts.log(f"[{name}] note: {len(extra)} image file(s) on disk not in the annotations")
        loaded.append((name, domain, builder, issues, image_root, hasher))
    if set(chosen) == set(COCO_O_DOMAINS):
        check_total("coco_o", sum(len(b.images) for _, _, b, _, _, _ in loaded), opts)
    return [finish_split(name, builder, dataset="coco_o", domain=domain, image_root=image_root,
                         opts=opts, issues=issues, sources=hasher.manifest_extra())
            for name, domain, builder, issues, image_root, hasher in loaded]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "the COCO-O root (<domain>/val2017/, <domain>/annotations/)")
    parser.add_argument("--domains", default=None,
                        help=f"comma-separated subset of {','.join(COCO_O_DOMAINS)} "
                             "(default: all six)")


@preparer("coco_o", add_arguments=add_arguments)
def prepare(args: argparse.Namespace) -> list[PreparedSplit]:
    """COCO-O (6 natural-shift domains) -> coco_o_<domain>."""
    domains = parse_list_arg(getattr(args, "domains", None), COCO_O_DOMAINS, "domains")
    return with_corruptions(
        args, prepare_coco_o(args.raw, Options.from_args(args), domains=domains))
