"""COCO 2017 → coco_train2017 / coco_val2017: a validated pass-through of ``instances_*.json``.

``--raw`` is the COCO root (``annotations/instances_{train,val}2017.json``,
``train2017/``, ``val2017/``). Image ids, annotation ids, boxes, ``area`` (the mask area COCO's
small/medium/large ranges use), ``iscrowd`` and the instance ``segmentation`` (polygons or RLE,
as pycocotools reads them: Mask R-CNN engines train on them; a malformed one is dropped with a
reported issue, keeping the box) are kept. Categories are renumbered 1..80 in COCO's order
(the contract of prepared splits), matched by *name* so COCO-O gets the same ids; the
original id is kept as ``source_id``. See ``datasets/coco.md`` for the error policy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmark.data import preparer
from benchmark.data.sources.common import (
    COCO_CLASSES,
    MALFORMED_OBJECT,
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
    require_file,
    resolve_size,
    sanitize_xyxy,
    with_corruptions,
)
from benchmark.data.split import PreparedSplit
from benchmark.errors import DataError, field_error

PUBLISHED = "https://cocodataset.org/#download (2017 Train/Val images, 2017 Train/Val annotations)"
COCO_SPLITS = ("train2017", "val2017")


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _require_list(coco: dict[str, Any], key: str, path: Path) -> list[Any]:
    if key not in coco:
        raise field_error(DataError, path, key, None, "missing required key")
    if not isinstance(coco[key], list):
        raise field_error(DataError, path, key, type(coco[key]).__name__, "expected a list")
    return coco[key]


def _categories(cats: list[Any], path: Path) -> tuple[list[dict[str, Any]], dict[Any, str | None]]:
    """Canonical 80 categories (ids 1..80) and source id -> class name (None: unknown name)."""
    by_name: dict[str, dict[str, Any]] = {}
    src_to_name: dict[Any, str | None] = {}
    known = set(COCO_CLASSES)
    for i, cat in enumerate(cats):
        if not isinstance(cat, dict) or "id" not in cat or not isinstance(cat.get("name"), str):
            raise field_error(DataError, path, f"categories[{i}]", cat, "needs an id and a name")
        if cat["id"] in src_to_name:
            raise field_error(DataError, path, f"categories[{i}].id", cat["id"], "duplicate id")
        name = cat["name"].strip()
        src_to_name[cat["id"]] = name if name in known else None
        if name in known:
            by_name[name] = cat
    out = [{"id": k + 1, "name": n,
            "supercategory": by_name.get(n, {}).get("supercategory", ""),
            "source_id": by_name.get(n, {}).get("id")} for k, n in enumerate(COCO_CLASSES)]
    return out, src_to_name


def load_coco_file(
    name: str, ann_file: Path, image_root: Path, opts: Options, hasher: SourceHasher,
) -> tuple[CocoBuilder, IssueLog, list[str], list[str]]:
    """Validate one COCO instances file against the images in ``image_root``.

    Returns the builder, the issues, the missing images (listed, not on disk) and the extra ones
    (on disk, not listed). Problems with images, categories or duplicate ids are errors naming
    ``<file>: <field>=<value>``; problems with single annotations are dropped and logged."""
    try:
        coco = json.loads(hasher.read(ann_file))
    except json.JSONDecodeError as e:
        raise DataError(f"{ann_file}: malformed JSON at line {e.lineno}, column {e.colno}: "
                        f"{e.msg}") from None
    if not isinstance(coco, dict):
        raise field_error(DataError, ann_file, "<root>", type(coco).__name__, "expected an object")
    images = _require_list(coco, "images", ann_file)
    anns = _require_list(coco, "annotations", ann_file)
    categories, src_to_name = _categories(_require_list(coco, "categories", ann_file), ann_file)
    builder = CocoBuilder(COCO_CLASSES, categories)
    issues = IssueLog()
    on_disk = list_files(image_root)
    missing: list[str] = []
    kept: dict[Any, tuple[int, int]] = {}
    listed: set[Any] = set()
    names: set[str] = set()
    for i, img in enumerate(images):
        if not isinstance(img, dict):
            raise field_error(DataError, ann_file, f"images[{i}]", img, "expected an object")
        for key in ("id", "file_name", "width", "height"):
            if key not in img:
                raise field_error(DataError, ann_file, f"images[{i}].{key}", None, "missing")
        iid, file_name = img["id"], img["file_name"]
        if not isinstance(iid, int) or isinstance(iid, bool):
            raise field_error(DataError, ann_file, f"images[{i}].id", iid, "must be an int")
        if iid in listed:
            raise field_error(DataError, ann_file, f"images[{i}].id", iid, "duplicate image id")
        listed.add(iid)
        if not isinstance(file_name, str) or not file_name:
            raise field_error(DataError, ann_file, f"images[{i}].file_name", file_name,
                              "must be a non-empty string")
        if file_name in names:
            raise field_error(DataError, ann_file, f"images[{i}].file_name", file_name,
                              "duplicate file name")
        names.add(file_name)
        size = (img["width"], img["height"])
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
            size = None  # read from the header (reported)
        if file_name not in on_disk:
            missing.append(file_name)
            continue
        size = resolve_size(image_root / file_name, size, opts, issues, ann_file)
        if size is None:
            continue
        builder.add_image(file_name, size[0], size[1], image_id=iid)
        kept[iid] = size
    ann_ids: set[Any] = set()
    for i, ann in enumerate(anns):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            issues.add(MALFORMED_OBJECT, ann_file, where, f"expected an object, got "
                       f"{type(ann).__name__}")
            continue
        aid = ann.get("id")
        where = f"annotations[{i}] (id {aid})"
        if not isinstance(aid, int) or isinstance(aid, bool):
            issues.add(MALFORMED_OBJECT, ann_file, where, "id must be an int")
            continue
        if aid in ann_ids:
            raise field_error(DataError, ann_file, f"annotations[{i}].id", aid,
                              "duplicate annotation id")
        ann_ids.add(aid)
        iid = ann.get("image_id")
        if iid not in listed:
            issues.add(MALFORMED_OBJECT, ann_file, where, f"image_id={iid!r} is not in images")
            continue
        if iid not in kept:
            continue  # its image is missing/unreadable: already reported
        cid = ann.get("category_id")
        if cid not in src_to_name or src_to_name[cid] is None:
            issues.add(UNKNOWN_CLASS, ann_file, where, f"category_id={cid!r} is not one of "
                       f"the {len(COCO_CLASSES)} COCO classes")
            continue
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_num(v) for v in bbox)):
            issues.add(MALFORMED_OBJECT, ann_file, where, f"bbox={bbox!r} is not [x, y, w, h]")
            continue
        x, y, w, h = (float(v) for v in bbox)
        width, height = kept[iid]
        xyxy = sanitize_xyxy((x, y, x + w, y + h), width, height, issues, ann_file, where)
        if xyxy is None:
            continue
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1):
            issues.add(MALFORMED_OBJECT, ann_file, where, f"iscrowd={crowd!r} is not 0 or 1")
            continue
        area = ann.get("area")
        area = float(area) if _is_num(area) and area > 0 else None
        segm = ann.get("segmentation")
        extra_keys: dict[str, Any] = {}
        if _is_segmentation(segm):
            extra_keys["segmentation"] = segm
        elif segm is not None:
            issues.add(MALFORMED_OBJECT, ann_file, where, f"segmentation={str(segm)[:60]!r} "
                       "is neither polygons nor an RLE")
        builder.add_box(iid, src_to_name[cid], xyxy, iscrowd=crowd, area=area,  # type: ignore[arg-type]
                        ann_id=aid, **extra_keys)
    extra = sorted(on_disk - names)
    check_missing(name, missing, ann_file, image_root, opts, issues)
    return builder, issues, missing, extra


def _is_segmentation(segm: Any) -> bool:
    """COCO's two forms: a non-empty list of polygons (flat coordinate lists of at least three
    points), or an RLE ``{"counts", "size": [h, w]}``."""
    if isinstance(segm, list):
        return bool(segm) and all(isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
                                  and all(_is_num(v) for v in poly) for poly in segm)
    return (isinstance(segm, dict) and isinstance(segm.get("counts"), list | str)
            and isinstance(segm.get("size"), list) and len(segm["size"]) == 2)


def prepare_coco(raw: Path, opts: Options | None = None, *,
                 splits: list[str] | None = None) -> list[PreparedSplit]:
    opts = opts or Options()
    raw = Path(raw)
    require_dir(raw, "the COCO root (annotations/, train2017/, val2017/)", PUBLISHED)
    loaded = []
    for split in splits or list(COCO_SPLITS):
        name = f"coco_{split}"
        ann_file = require_file(raw / "annotations" / f"instances_{split}.json",
                                f"COCO {split} instance annotations", PUBLISHED)
        image_root = require_dir(raw / split, f"COCO {split} images", PUBLISHED)
        hasher = SourceHasher(raw)
        builder, issues, missing, extra = load_coco_file(name, ann_file, image_root, opts, hasher)
        check_count(name, len(builder.images), opts, missing=missing, extra=extra)
        loaded.append((name, builder, issues, image_root, hasher))
    return [finish_split(name, builder, dataset="coco", domain="coco", image_root=image_root,
                         opts=opts, issues=issues, sources=hasher.manifest_extra())
            for name, builder, issues, image_root, hasher in loaded]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "the COCO root (annotations/, train2017/, val2017/)")
    parser.add_argument("--splits", default=None,
                        help=f"comma-separated subset of {','.join(COCO_SPLITS)} (default: both)")


@preparer("coco", add_arguments=add_arguments)
def prepare(args: argparse.Namespace) -> list[PreparedSplit]:
    """COCO 2017 instances JSON -> coco_train2017, coco_val2017 (validated pass-through)."""
    splits = parse_list_arg(getattr(args, "splits", None), COCO_SPLITS, "splits")
    return with_corruptions(args, prepare_coco(args.raw, Options.from_args(args), splits=splits))
