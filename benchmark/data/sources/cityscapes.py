"""Cityscapes (gtFine) → cityscapes_train / cityscapes_val, and Foggy Cityscapes →
foggy_cityscapes_val (same boxes, foggy images).

Box derivation (see ``datasets/cityscapes.md``). detectron2's built-in Cityscapes registration
calls ``load_cityscapes_instances(..., from_json=True)``: it reads ``*_gtFine_polygons.json``,
walks the objects in *reverse* file order and subtracts from every instance the union of the
polygons drawn after it — cityscapesScripts rasterises the polygons in file order, each one
overwriting the earlier ones, so that is what the instance ground truth shows — and takes the
bounds of what is left. We follow the same source and the same occlusion rule, but resolve it on
the pixel grid with the rasteriser cityscapesScripts itself uses (``PIL.ImageDraw.polygon``)
instead of with shapely (not a dependency here):

* objects with ``deleted`` are ignored; ``license plate`` (id -1) is neither kept nor an occluder;
* every other known label occludes what came before it; ``<label>group`` is that label's crowd
  region (``iscrowd: 1``);
* only the 8 classes with ``hasInstances and not ignoreInEval`` (person, rider, car, truck, bus,
  train, motorcycle, bicycle) become boxes; caravan/trailer only occlude;
* box = extent of the instance's visible pixels, in continuous coordinates:
  ``[xmin, ymin, xmax + 1, ymax + 1]`` for visible pixel columns ``xmin..xmax``. For an
  unoccluded polygon with integer vertices this is exactly detectron2's box
  (``bounds(buffer(polygon + 0.5, 0.5))`` = ``[min x, min y, max x + 1, max y + 1]``); with
  occlusion the two agree up to sub-pixel differences at the occluder's edge;
* instance mask (``segmentation``, for Mask R-CNN) = the same visible pixels as a COCO RLE
  (pycocotools ``mask.encode``, counts as a string). detectron2 keeps the polygons that remain
  after subtracting the later ones (shapely differences); an occluded instance is then no
  longer one polygon, and its pixels are what the RLE stores. ``area`` stays the box area;
* an instance with no visible pixel left is dropped (as detectron2 does; counted in the manifest
  as ``occluded_dropped``, not an annotation problem); the image size comes from
  ``imgWidth``/``imgHeight`` (no image is opened).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_util

from benchmark.data import preparer
from benchmark.data.sources.common import (
    CITYSCAPES_CLASSES,
    MALFORMED_OBJECT,
    OUTSIDE,
    UNKNOWN_CLASS,
    CocoBuilder,
    IssueLog,
    Options,
    SourceHasher,
    add_common_arguments,
    check_count,
    check_missing,
    finish_split,
    list_files,
    parse_list_arg,
    require_dir,
    resolve_size,
    with_corruptions,
)
from benchmark.data.split import PreparedSplit
from benchmark.errors import DataError

PUBLISHED = "https://www.cityscapes-dataset.com/downloads/ (gtFine_trainvaltest.zip, " \
    "leftImg8bit_trainvaltest.zip, leftImg8bit_trainvaltest_foggy.zip)"

#: cityscapesScripts' label table: name -> id (only what the derivation needs: which names
#: exist, which have id -1). Thing classes are CITYSCAPES_CLASSES.
LABEL_IDS: dict[str, int] = {
    "unlabeled": 0, "ego vehicle": 1, "rectification border": 2, "out of roi": 3, "static": 4,
    "dynamic": 5, "ground": 6, "road": 7, "sidewalk": 8, "parking": 9, "rail track": 10,
    "building": 11, "wall": 12, "fence": 13, "guard rail": 14, "bridge": 15, "tunnel": 16,
    "pole": 17, "polegroup": 18, "traffic light": 19, "traffic sign": 20, "vegetation": 21,
    "terrain": 22, "sky": 23, "person": 24, "rider": 25, "car": 26, "truck": 27, "bus": 28,
    "caravan": 29, "trailer": 30, "train": 31, "motorcycle": 32, "bicycle": 33,
    "license plate": -1,
}  # fmt: skip

CITYSCAPES_SPLITS = ("train", "val")
DEFAULT_BETA = 0.02
FOGGY_BETAS = (0.005, 0.01, 0.02)  # the attenuation coefficients released by Sakaridis et al.
GT_SUFFIX = "_gtFine_polygons.json"
IMAGE_SUFFIX = "_leftImg8bit.png"


def resolve_label(name: str) -> tuple[str, bool] | None:
    """``"cargroup"`` → ``("car", True)``; ``"car"`` → ``("car", False)``; unknown → None
    (detectron2's rule: a name ending in ``group`` whose stem is a label is a crowd region)."""
    if name in LABEL_IDS:
        return name, False
    if name.endswith("group") and name[: -len("group")] in LABEL_IDS:
        return name[: -len("group")], True
    return None


@dataclass
class _Poly:
    index: int
    label: str
    iscrowd: bool
    points: list[tuple[float, float]]
    bounds: tuple[float, float, float, float]  # vertex extents


def _read_polygon(obj: Any) -> list[tuple[float, float]] | None:
    poly = obj.get("polygon")
    if not isinstance(poly, list) or len(poly) < 3:
        return None
    pts = []
    for p in poly:
        if (not isinstance(p, list | tuple) or len(p) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)):
            return None
        pts.append((float(p[0]), float(p[1])))
    return pts


def parse_polygons(jsonobj: Any, path: Path, issues: IssueLog) -> tuple[tuple[int, int] | None,
                                                                       list[_Poly]]:
    """The drawable polygons in file order and the annotated (width, height)."""
    if not isinstance(jsonobj, dict) or not isinstance(jsonobj.get("objects"), list):
        raise DataError(f"{path}: objects={type(jsonobj).__name__}: expected an object with an "
                        f"'objects' list")
    w, h = jsonobj.get("imgWidth"), jsonobj.get("imgHeight")
    size = (w, h) if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0 else None
    polys: list[_Poly] = []
    for i, obj in enumerate(jsonobj["objects"]):
        if not isinstance(obj, dict):
            issues.add(MALFORMED_OBJECT, path, f"objects[{i}]", f"expected an object, got "
                       f"{type(obj).__name__}")
            continue
        if "deleted" in obj:
            continue
        name = obj.get("label")
        where = f"objects[{i}] ({name})"
        resolved = resolve_label(name) if isinstance(name, str) else None
        if resolved is None:
            issues.add(UNKNOWN_CLASS, path, where, f"label {name!r} is not a Cityscapes label")
            continue
        label, group = resolved
        if LABEL_IDS[label] < 0:
            continue
        pts = _read_polygon(obj)
        if pts is None:
            issues.add(MALFORMED_OBJECT, path, where, "polygon must be a list of >= 3 [x, y] "
                       "number pairs")
            continue
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        polys.append(_Poly(i, label, group, pts, (min(xs), min(ys), max(xs), max(ys))))
    return size, polys


@dataclass
class InstanceBox:
    index: int  # position in the JSON's objects list
    label: str
    iscrowd: bool
    xyxy: tuple[int, int, int, int]
    segmentation: dict[str, Any]  # COCO RLE of the visible pixels, full image size


def encode_visible(window: np.ndarray, x0: int, y0: int, width: int,
                   height: int) -> dict[str, Any]:
    """The COCO RLE (string counts) of a boolean window placed at (x0, y0) in the image."""
    full = np.zeros((height, width), dtype=np.uint8, order="F")
    full[y0:y0 + window.shape[0], x0:x0 + window.shape[1]] = window
    rle = mask_util.encode(full)
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def instance_boxes(polys: list[_Poly], width: int, height: int, issues: IssueLog,
                   path: Path) -> tuple[list[InstanceBox], int]:
    """Visible-pixel boxes of the thing instances, and how many were fully occluded."""
    boxes: list[InstanceBox] = []
    occluded = 0
    if not polys:
        return boxes, 0
    b = np.array([p.bounds for p in polys], dtype=np.float64)
    things = set(CITYSCAPES_CLASSES)
    for k, poly in enumerate(polys):
        if poly.label not in things:
            continue
        x0, y0, x1, y1 = poly.bounds
        wx0, wy0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        wx1, wy1 = min(int(np.ceil(x1)), width - 1), min(int(np.ceil(y1)), height - 1)
        if wx0 > wx1 or wy0 > wy1:
            issues.add(OUTSIDE, path, f"objects[{poly.index}] ({poly.label})",
                       f"polygon bounds {list(poly.bounds)} lie outside the {width}x{height} image")
            continue
        window = Image.new("L", (wx1 - wx0 + 1, wy1 - wy0 + 1), 0)
        draw = ImageDraw.Draw(window)
        draw.polygon([(x - wx0, y - wy0) for x, y in poly.points], fill=1)
        later = b[k + 1:]
        hits = np.flatnonzero((later[:, 0] <= wx1) & (later[:, 2] >= wx0)
                              & (later[:, 1] <= wy1) & (later[:, 3] >= wy0))
        for j in hits:
            draw.polygon([(x - wx0, y - wy0) for x, y in polys[k + 1 + j].points], fill=0)
        mask = np.asarray(window, dtype=bool)
        cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
        if cols.size == 0:
            occluded += 1
            continue
        xyxy = (wx0 + int(cols[0]), wy0 + int(rows[0]), wx0 + int(cols[-1]) + 1,
                wy0 + int(rows[-1]) + 1)
        boxes.append(InstanceBox(poly.index, poly.label, poly.iscrowd, xyxy,
                                 encode_visible(mask, wx0, wy0, width, height)))
    return boxes, occluded


@dataclass
class CityscapesSet:
    split: str
    gt_files: list[str]  # relative to gtFine/<split>, sorted
    images: list[tuple[str, int, int, list[InstanceBox]]] = field(default_factory=list)
    issues: IssueLog = field(default_factory=IssueLog)
    occluded: int = 0
    sources: list[Path] = field(default_factory=list)


def load_annotations(raw: Path, split: str, opts: Options, hasher: SourceHasher,
                     image_dir: Path, image_suffix: str) -> tuple[CityscapesSet, list[str],
                                                                   list[str]]:
    """Parse gtFine/<split>; pair every annotation with ``<image_dir>/<city>/<stem><suffix>``.

    Returns the set plus the missing images (annotated, not on disk) and the extra ones (on
    disk, not annotated)."""
    gt_dir = require_dir(raw / "gtFine" / split, f"Cityscapes gtFine/{split} annotations "
                         "(<city>/*_gtFine_polygons.json)", PUBLISHED)
    gt_files = sorted(f for f in list_files(gt_dir) if f.endswith(GT_SUFFIX))
    if not gt_files:
        raise DataError(f"{gt_dir}: no *{GT_SUFFIX} files found")
    on_disk = list_files(image_dir, (image_suffix.lower(),)) if image_dir.is_dir() else set()
    cs = CityscapesSet(split, gt_files)
    missing: list[str] = []
    stems = set()
    for rel in gt_files:
        stem = rel[: -len(GT_SUFFIX)]
        stems.add(stem)
        image_rel = stem + image_suffix
        if image_rel not in on_disk:
            missing.append(f"{split}/{image_rel}")
            continue
        path = gt_dir / rel
        data = hasher.read(path)
        cs.sources.append(path)
        try:
            jsonobj = json.loads(data)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: "
                            f"{e.msg}") from None
        size, polys = parse_polygons(jsonobj, path, cs.issues)
        size = resolve_size(image_dir / image_rel, size, opts, cs.issues, path)
        if size is None:
            continue
        boxes, occluded = instance_boxes(polys, size[0], size[1], cs.issues, path)
        cs.occluded += occluded
        cs.images.append((f"{split}/{image_rel}", size[0], size[1], boxes))
    extra = sorted(f"{split}/{f}" for f in on_disk if f[: -len(image_suffix)] not in stems)
    return cs, missing, extra


def _write(name: str, cs: CityscapesSet, *, domain: str, image_root: Path, opts: Options,
           hasher: SourceHasher, extra: dict[str, Any]) -> PreparedSplit:
    builder = CocoBuilder(CITYSCAPES_CLASSES)
    for file_name, w, h, boxes in cs.images:
        iid = builder.add_image(file_name, w, h)
        for box in boxes:
            builder.add_box(iid, box.label, box.xyxy, iscrowd=int(box.iscrowd),
                            segmentation=box.segmentation)
    return finish_split(
        name, builder, dataset="cityscapes", domain=domain, image_root=image_root, opts=opts,
        issues=cs.issues, sources=hasher.manifest_extra(cs.sources),
        extra={"box_derivation": "gtFine polygons, draw-order occlusion, visible-pixel extent",
               "mask_derivation": "the same visible pixels, COCO RLE",
               "occluded_dropped": cs.occluded, **extra},
    )


def prepare_cityscapes(raw: Path, opts: Options | None = None, *,
                       splits: list[str] | None = None) -> list[PreparedSplit]:
    opts = opts or Options()
    raw = Path(raw)
    require_dir(raw, "the Cityscapes root (gtFine/, leftImg8bit/)", PUBLISHED)
    image_root = require_dir(raw / "leftImg8bit", "Cityscapes leftImg8bit/ images", PUBLISHED)
    hasher = SourceHasher(raw)
    loaded = []
    for split in splits or list(CITYSCAPES_SPLITS):
        cs, missing, extra = load_annotations(raw, split, opts, hasher, image_root / split,
                                              IMAGE_SUFFIX)
        check_missing(f"cityscapes_{split}", missing, raw / "gtFine" / split, image_root, opts,
                      cs.issues)
        check_count(f"cityscapes_{split}", len(cs.images), opts, missing=missing, extra=extra)
        loaded.append(cs)
    return [_write(f"cityscapes_{cs.split}", cs, domain="cityscapes", image_root=image_root,
                   opts=opts, hasher=hasher, extra={}) for cs in loaded]


def beta_str(beta: float) -> str:
    return format(beta, "g")


def foggy_split_name(beta: float) -> str:
    if beta == DEFAULT_BETA:
        return "foggy_cityscapes_val"
    return f"foggy_cityscapes_val_beta{beta_str(beta)}"


def prepare_foggy_cityscapes(raw: Path, opts: Options | None = None, *,
                             beta: float = DEFAULT_BETA,
                             foggy_root: Path | None = None) -> list[PreparedSplit]:
    """Foggy Cityscapes val: Cityscapes val boxes on ``*_leftImg8bit_foggy_beta_<beta>.png``.

    ``foggy_root`` is the ``leftImg8bit_foggy`` directory (default ``<raw>/leftImg8bit_foggy``);
    a directory that contains ``leftImg8bit_foggy`` is accepted too.
    """
    opts = opts or Options()
    raw = Path(raw)
    if not beta > 0:
        raise DataError(f"--beta={beta!r}: must be > 0 (released: {FOGGY_BETAS})")
    require_dir(raw, "the Cityscapes root (gtFine/)", PUBLISHED)
    root = Path(foggy_root) if foggy_root is not None else raw / "leftImg8bit_foggy"
    if (root / "leftImg8bit_foggy").is_dir():
        root = root / "leftImg8bit_foggy"
    image_root = require_dir(root, "Foggy Cityscapes images (leftImg8bit_foggy/<split>/<city>/"
                             f"*_leftImg8bit_foggy_beta_{beta_str(beta)}.png)", PUBLISHED)
    name = foggy_split_name(beta)
    suffix = f"_leftImg8bit_foggy_beta_{beta_str(beta)}.png"
    hasher = SourceHasher(raw)
    cs, missing, extra = load_annotations(raw, "val", opts, hasher, image_root / "val", suffix)
    check_missing(name, missing, raw / "gtFine" / "val", image_root, opts, cs.issues)
    check_count(name, len(cs.images), opts, expected_key="foggy_cityscapes_val", missing=missing,
                extra=extra)
    return [_write(name, cs, domain="foggy", image_root=image_root, opts=opts, hasher=hasher,
                   extra={"beta": beta})]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "the Cityscapes root (gtFine/, leftImg8bit/)")
    parser.add_argument("--splits", default=None,
                        help=f"comma-separated subset of {','.join(CITYSCAPES_SPLITS)} "
                             "(default: both)")


def add_foggy_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "the Cityscapes root (gtFine/; leftImg8bit_foggy/ unless "
                         "--foggy-root)")
    parser.add_argument("--beta", type=float, default=DEFAULT_BETA,
                        help=f"fog attenuation coefficient, one of {FOGGY_BETAS} as released "
                             f"(default {DEFAULT_BETA}; others get a _beta<β> name suffix)")
    parser.add_argument("--foggy-root", type=Path, default=None,
                        help="the leftImg8bit_foggy directory (default <raw>/leftImg8bit_foggy)")


@preparer("cityscapes", add_arguments=add_arguments)
def prepare(args: argparse.Namespace) -> list[PreparedSplit]:
    """Cityscapes gtFine polygons -> cityscapes_train, cityscapes_val (8 thing classes)."""
    splits = parse_list_arg(getattr(args, "splits", None), CITYSCAPES_SPLITS, "splits")
    return with_corruptions(
        args, prepare_cityscapes(args.raw, Options.from_args(args), splits=splits))


@preparer("foggy_cityscapes", add_arguments=add_foggy_arguments)
def prepare_foggy(args: argparse.Namespace) -> list[PreparedSplit]:
    """Foggy Cityscapes val (beta 0.02 by default) -> foggy_cityscapes_val."""
    return with_corruptions(args, prepare_foggy_cityscapes(
        args.raw, Options.from_args(args), beta=getattr(args, "beta", DEFAULT_BETA),
        foggy_root=getattr(args, "foggy_root", None)))
