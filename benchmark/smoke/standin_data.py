"""Stand-in raw datasets: a few images per split, written in each dataset's own on-disk
layout (:mod:`benchmark.smoke.rawformats`) at its true image sizes and converted by the
real ``prepare`` converters, so a smoke test exercises the converter, its edge cases
(``difficult`` and truncated VOC boxes, Cityscapes polygons with occlusion and crowd groups,
BDD100K's JSON, COCO's 80 gapped category ids, crowd RLEs and polygons) and the real
geometry. :data:`STANDINS` maps every raw dataset to the splits it yields.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.data.sources.common import CITYSCAPES_CLASSES, COCO_CLASSES, VOC_CLASSES, Options
from benchmark.data.split import PreparedSplit
from benchmark.smoke import rawformats as rf


@dataclass(frozen=True)
class Sizes:
    """How many images a stand-in writes, and at what fraction of its true size."""

    train: int  # images of each training split (at least one batch)
    eval: int  # images of each evaluation split
    scale: float = 1.0  # image sizes (1: the dataset's own)

    def wh(self, w: int, h: int) -> tuple[int, int]:
        return max(32, round(w * self.scale)), max(32, round(h * self.scale))


Generate = Callable[[Path, Sizes], None]
Convert = Callable[[Path, Options], list[PreparedSplit]]


@dataclass(frozen=True)
class StandIn:
    """A raw dataset: the splits its converter yields, how to write a small copy of its
    layout, and the converter (the real one)."""

    dataset: str
    splits: tuple[str, ...]
    generate: Generate
    convert: Convert
    raw_dir: str  # the raw tree it reads (datasets sharing one tree share the folder)


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _box(rng: np.random.Generator, w: int, h: int) -> tuple[int, int, int, int]:
    """A box covering 10–60 % of each side, 1-based inclusive pixel coordinates."""
    bw, bh = int(w * rng.uniform(0.1, 0.6)), int(h * rng.uniform(0.1, 0.6))
    x0, y0 = int(rng.integers(1, w - bw)), int(rng.integers(1, h - bh))
    return x0, y0, x0 + bw, y0 + bh


# ---- Pascal VOC and the cross-domain sets ------------------------------------------------------
VOC_SIZES = ((500, 375), (500, 333), (375, 500), (353, 500))


def _voc_images(ds: Path, prefix: str, n: int, sizes: Sizes, classes: tuple[str, ...],
                source: str = "astronaut") -> list[str]:
    ids = []
    for i in range(n):
        image_id = f"{prefix}{i:06d}"
        w, h = sizes.wh(*VOC_SIZES[i % len(VOC_SIZES)])
        rng = _rng(ds.name, image_id)
        c = [classes[int(k)] for k in rng.integers(0, len(classes), 3)]
        objects = [
            rf.voc_object(c[0], _box(rng, w, h)),
            rf.voc_object(c[1], _box(rng, w, h), difficult=1),
            # truncated by the image border: VOC marks it, its box ends at the last pixel
            rf.voc_object(c[2], (max(1, w // 2), max(1, h // 3), w, h), truncated=1),
        ]
        rf.add_voc_image(ds, image_id, (w, h), objects, source=source)
        ids.append(image_id)
    return ids


def _generate_voc(raw: Path, sizes: Sizes) -> None:
    n07 = math.ceil(sizes.train / 2)
    v07, v12 = raw / "VOC2007", raw / "VOC2012"
    rf.write_image_set(v07, "trainval", _voc_images(v07, "", n07, sizes, VOC_CLASSES))
    rf.write_image_set(v07, "test", _voc_images(v07, "9", sizes.eval, sizes, VOC_CLASSES))
    rf.write_image_set(v12, "trainval", _voc_images(v12, "2008_", max(1, sizes.train - n07),
                                                   sizes, VOC_CLASSES))


def _cross_domain(dataset: str) -> tuple[Generate, Convert]:
    from benchmark.data.sources.cross_domain import ANNOTATED_CLASSES, prepare_cross_domain

    def generate(raw: Path, sizes: Sizes) -> None:
        ids = _voc_images(raw, f"{dataset[:2]}", sizes.eval, sizes, ANNOTATED_CLASSES[dataset],
                          source="chelsea")
        rf.write_image_set(raw, "test", ids)

    return generate, lambda raw, opts: prepare_cross_domain(dataset, raw, opts)


# ---- Cityscapes and Foggy Cityscapes ------------------------------------------------------------
CITYSCAPES_SIZE = (2048, 1024)
_LABEL_IDS = {"person": 24, "rider": 25, "car": 26, "truck": 27, "bus": 28, "train": 31,
              "motorcycle": 32, "bicycle": 33}


def _cityscapes_image(raw: Path, split: str, stem: str, sizes: Sizes, foggy: bool) -> None:
    w, h = sizes.wh(*CITYSCAPES_SIZE)
    rng = _rng("cityscapes", stem)
    objects = [{"label": "road", "polygon": rf.rect_polygon(0, h * 2 // 3, w - 1, h - 1)},
               {"label": "building", "polygon": rf.rect_polygon(0, 0, w // 3, h // 2)}]
    instances = []
    for i, k in enumerate(rng.integers(0, len(CITYSCAPES_CLASSES), 4)):
        label = CITYSCAPES_CLASSES[int(k)]
        x0, y0, x1, y1 = _box(rng, w, h)
        polygon = [[x0, y1], [(x0 + x1) // 2, y0], [x1, y1]] if i % 2 else \
            rf.rect_polygon(x0, y0, x1, y1)
        objects.append({"label": label, "polygon": polygon})
        instances.append((_LABEL_IDS[label] * 1000 + i, polygon))
    x0, y0, x1, y1 = _box(rng, w, h)  # a crowd region and an occluding license plate
    objects += [{"label": "cargroup", "polygon": rf.rect_polygon(x0, y0, x1, y1)},
                {"label": "license plate", "polygon": rf.rect_polygon(x0, y0, x0 + 8, y0 + 4)}]
    rf.write_cityscapes_polygons(raw, split, stem, objects, (w, h))
    rf.write_cityscapes_instance_ids(raw, split, stem, (w, h), instances)
    rf.save_png(raw / "leftImg8bit" / split / f"{stem}_leftImg8bit.png", w, h)
    if foggy:
        rf.save_png(raw / "leftImg8bit_foggy" / split /
                    f"{stem}_leftImg8bit_foggy_beta_0.02.png", w, h, source="coffee")


def _generate_cityscapes(raw: Path, sizes: Sizes) -> None:
    for i in range(sizes.train):
        _cityscapes_image(raw, "train", f"aachen/aachen_{i:06d}_000019", sizes, foggy=False)
    for i in range(sizes.eval):
        _cityscapes_image(raw, "val", f"frankfurt/frankfurt_{i:06d}_000294", sizes, foggy=True)


# ---- BDD100K ------------------------------------------------------------------------------------
BDD_CATEGORIES = ("pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
                  "traffic light", "traffic sign")


def _generate_bdd100k(raw: Path, sizes: Sizes) -> None:
    w, h = sizes.wh(1280, 720)
    frames = []
    for i in range(sizes.eval):
        rng = _rng("bdd100k", i)
        labels = []
        for j, k in enumerate(rng.integers(0, len(BDD_CATEGORIES), 4)):
            x0, y0, x1, y1 = _box(rng, w, h)
            labels.append({"id": str(j), "category": BDD_CATEGORIES[int(k)],
                           "attributes": {"occluded": bool(j % 2), "crowd": j == 3},
                           "box2d": rf.bdd_box(x0 + 0.5, y0 + 0.25, x1 + 0.5, y1 + 0.75)})
        frames.append({"name": f"b1c9c847-{i:08x}.jpg", "attributes": {"weather": "clear"},
                       "labels": labels})
    rf.write_bdd100k(raw, frames, size=(w, h))


# ---- COCO 2017 and COCO-O -----------------------------------------------------------------------
#: COCO 2017's category ids (1–90 with gaps), in COCO_CLASSES order
COCO_IDS = (*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70,
            *range(72, 83), *range(84, 91))
COCO_SIZES = ((640, 480), (640, 427), (480, 640), (612, 612))


def _uncompressed_rle(x0: int, y0: int, x1: int, y1: int, w: int, h: int) -> dict:
    """A crowd region as COCO stores it: column-major run lengths starting with zeros."""
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    flat = mask.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]]))
    counts = runs.tolist() if flat[0] == 0 else [0, *runs.tolist()]
    return {"counts": counts, "size": [h, w]}


def coco_document(prefix: int, n: int, sizes: Sizes, *, categories_reversed: bool = False
                  ) -> dict:
    cats = [{"id": i, "name": n_, "supercategory": "thing"}
            for i, n_ in zip(COCO_IDS, COCO_CLASSES, strict=True)]
    images, annotations = [], []
    for i in range(n):
        image_id = prefix * 100000 + i + 1
        w, h = sizes.wh(*COCO_SIZES[i % len(COCO_SIZES)])
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": w,
                       "height": h, "license": 1})
        rng = _rng("coco", prefix, i)
        for j, k in enumerate(rng.integers(0, 80, 4)):
            x0, y0, x1, y1 = _box(rng, w, h)
            crowd = j == 3
            segm = (_uncompressed_rle(x0, y0, x1, y1, w, h) if crowd else
                    [[x0, y0, x1, y0, x1, y1, (x0 + x1) / 2, (y0 + y1) / 2, x0, y1]])
            annotations.append({"id": image_id * 10 + j, "image_id": image_id,
                                "category_id": COCO_IDS[int(k)], "iscrowd": int(crowd),
                                "bbox": [x0, y0, x1 - x0, y1 - y0],
                                "area": float((x1 - x0) * (y1 - y0)), "segmentation": segm})
    return {"info": {"year": 2017}, "licenses": [],
            "images": images, "annotations": annotations,
            "categories": cats[::-1] if categories_reversed else cats}


def _generate_coco(raw: Path, sizes: Sizes) -> None:
    rf.write_coco_tree(raw, "train2017", coco_document(1, sizes.train, sizes))
    rf.write_coco_tree(raw, "val2017", coco_document(2, sizes.eval, sizes))


def _generate_coco_o(raw: Path, sizes: Sizes) -> None:
    from benchmark.data.sources.coco_o import COCO_O_DOMAINS

    for i, domain in enumerate(COCO_O_DOMAINS):  # COCO-O lists categories in its own order
        doc = coco_document(3 + i, sizes.eval, sizes, categories_reversed=True)
        rf.write_coco_tree(raw / domain, "val2017", doc)


# ---- the table ----------------------------------------------------------------------------------
def _standins() -> dict[str, StandIn]:
    from benchmark.data.sources import (
        prepare_bdd100k,
        prepare_cityscapes,
        prepare_coco,
        prepare_coco_o,
        prepare_foggy_cityscapes,
        prepare_voc,
    )
    from benchmark.data.sources.coco_o import COCO_O_DOMAINS

    out = [
        StandIn("voc", ("voc07_trainval", "voc12_trainval", "voc0712_trainval", "voc07_test"),
                _generate_voc, prepare_voc, "VOCdevkit"),
        *(StandIn(d, (f"{d}_test",), *_cross_domain(d), d)
          for d in ("clipart", "watercolor", "comic")),
        StandIn("cityscapes", ("cityscapes_train", "cityscapes_val"), _generate_cityscapes,
                prepare_cityscapes, "cityscapes"),
        StandIn("foggy_cityscapes", ("foggy_cityscapes_val",), _generate_cityscapes,
                prepare_foggy_cityscapes, "cityscapes"),
        StandIn("bdd100k", ("bdd100k_val",), _generate_bdd100k, prepare_bdd100k, "bdd100k"),
        StandIn("coco", ("coco_train2017", "coco_val2017"), _generate_coco, prepare_coco, "coco"),
        StandIn("coco_o", tuple(f"coco_o_{d}" for d in COCO_O_DOMAINS), _generate_coco_o,
                prepare_coco_o, "ood_coco"),
    ]
    return {s.dataset: s for s in out}


STANDINS: dict[str, StandIn] = _standins()


def standin_for(split: str) -> StandIn | None:
    return next((s for s in STANDINS.values() if split in s.splits), None)


@contextlib.contextmanager
def registered(standin: StandIn) -> Iterator[StandIn]:
    """Add (or replace) a stand-in for the block: a dataset tried out before its stand-in
    is written, and the tests' deliberately broken converter."""
    before = STANDINS.get(standin.dataset)
    STANDINS[standin.dataset] = standin
    try:
        yield standin
    finally:
        if before is None:
            STANDINS.pop(standin.dataset, None)
        else:
            STANDINS[standin.dataset] = before
