"""Converters from real datasets' native layouts to prepared splits.

Importing this package registers one preparer per dataset with
:data:`benchmark.data.PREPARERS`: ``voc``, ``clipart``, ``watercolor``, ``comic``,
``cityscapes``, ``foggy_cityscapes``, ``bdd100k``, ``coco``, ``coco_o``. Each is also callable
as a plain function (``prepare_voc(raw, Options(...))`` etc.). Shared policy and helpers live in
:mod:`benchmark.data.sources.common`, the VOC XML layout in :mod:`.vocxml`.
"""

from __future__ import annotations

from benchmark.data.sources.bdd100k import prepare_bdd100k
from benchmark.data.sources.cityscapes import prepare_cityscapes, prepare_foggy_cityscapes
from benchmark.data.sources.coco import prepare_coco
from benchmark.data.sources.coco_o import prepare_coco_o
from benchmark.data.sources.common import EXPECTED_IMAGES, EXPECTED_TOTALS, Options
from benchmark.data.sources.cross_domain import prepare_cross_domain
from benchmark.data.sources.voc import prepare_voc

__all__ = [
    "EXPECTED_IMAGES",
    "EXPECTED_TOTALS",
    "Options",
    "prepare_bdd100k",
    "prepare_cityscapes",
    "prepare_coco",
    "prepare_coco_o",
    "prepare_cross_domain",
    "prepare_foggy_cityscapes",
    "prepare_voc",
]
