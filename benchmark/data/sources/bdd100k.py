"""BDD100K detection labels (val) → bdd100k_val, on the 8 Cityscapes classes.

Reads either label format (auto-detected from where it is, or given with ``--labels``):

* ``labels/det_20/det_val.json`` (BDD100K 2020 detection, Scalabel format): categories
  pedestrian, rider, car, truck, bus, train, motorcycle, bicycle, traffic light, traffic sign,
  other vehicle, other person, trailer;
* ``labels/bdd100k_labels_images_val.json`` (2018 release): person, rider, car, truck, bus,
  train, motor, bike, traffic light, traffic sign, drivable area, lane.

Mapping onto the Cityscapes thing classes (ids as in ``cityscapes_val``):
person/pedestrian → person, rider → rider, car → car, truck → truck, bus → bus, train → train,
motor/motorcycle → motorcycle, bike/bicycle → bicycle. Traffic lights/signs, drivable area,
lanes, ``other vehicle``, ``other person`` and ``trailer`` have no Cityscapes counterpart among
the 8 classes and are left out (counted in the manifest as ``unmapped_boxes``); any other
category name is an unknown class (dropped and reported). ``box2d`` ``x1,y1,x2,y2`` are taken
as continuous pixel coordinates. Every BDD100K image is 1280×720, so that size is used without
opening images (``--verify-images`` checks it). Images with no label entry for any object are
kept with no boxes.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from benchmark.data import preparer
from benchmark.data.sources.common import (
    CITYSCAPES_CLASSES,
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
    require_dir,
    require_file,
    resolve_size,
    sanitize_xyxy,
    with_corruptions,
)
from benchmark.data.split import PreparedSplit
from benchmark.errors import DataError, field_error

PUBLISHED = "https://bdd-data.berkeley.edu/ (bdd100k_images_100k.zip, bdd100k_det_20_labels)"
IMAGE_SIZE = (1280, 720)

BDD_TO_CITYSCAPES: dict[str, str] = {
    "person": "person", "pedestrian": "person", "rider": "rider", "car": "car", "truck": "truck",
    "bus": "bus", "train": "train", "motor": "motorcycle", "motorcycle": "motorcycle",
    "bike": "bicycle", "bicycle": "bicycle",
}  # fmt: skip
BDD_UNMAPPED = frozenset({
    "traffic light", "traffic sign", "drivable area", "lane", "other vehicle", "other person",
    "trailer",
})  # fmt: skip

LABEL_CANDIDATES = (
    "labels/det_20/det_val.json",
    "labels/bdd100k_labels_images_val.json",
    "labels/det_val.json",
)


def find_labels(raw: Path, labels: Path | None) -> Path:
    if labels is not None:
        return require_file(Path(labels), "a BDD100K detection label JSON", PUBLISHED)
    for cand in LABEL_CANDIDATES:
        if (raw / cand).is_file():
            return raw / cand
    raise DataError(f"{raw}: no BDD100K val labels found (looked for "
                    f"{', '.join(LABEL_CANDIDATES)}; pass --labels PATH); published at {PUBLISHED}")


def _box(label: dict[str, Any]) -> tuple[float, float, float, float] | None:
    b = label.get("box2d")
    if not isinstance(b, dict):
        return None
    try:
        vals = tuple(float(b[k]) for k in ("x1", "y1", "x2", "y2"))
    except (KeyError, TypeError, ValueError):
        return None
    return vals  # type: ignore[return-value]


def prepare_bdd100k(raw: Path, opts: Options | None = None, *,
                    labels: Path | None = None) -> list[PreparedSplit]:
    opts = opts or Options()
    raw = Path(raw)
    name = "bdd100k_val"
    require_dir(raw, "the bdd100k directory (images/100k/val/, labels/)", PUBLISHED)
    image_root = require_dir(raw / "images" / "100k" / "val", "BDD100K val images", PUBLISHED)
    label_file = find_labels(raw, labels)
    hasher = SourceHasher(raw)
    try:
        entries = json.loads(hasher.read(label_file))
    except json.JSONDecodeError as e:
        raise DataError(f"{label_file}: malformed JSON at line {e.lineno}, column {e.colno}: "
                        f"{e.msg}") from None
    if isinstance(entries, dict) and isinstance(entries.get("frames"), list):
        entries = entries["frames"]  # Scalabel dataset wrapper
    if not isinstance(entries, list):
        raise field_error(DataError, label_file, "<root>", type(entries).__name__,
                          "expected a list of image entries")
    on_disk = list_files(image_root)
    issues = IssueLog()
    builder = CocoBuilder(CITYSCAPES_CLASSES)
    unmapped: Counter[str] = Counter()
    seen: dict[str, int] = {}
    missing: list[str] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise field_error(DataError, label_file, f"[{i}].name",
                              entry.get("name") if isinstance(entry, dict) else entry,
                              "every entry needs an image file name")
        file_name = entry["name"]
        if file_name in seen:
            raise field_error(DataError, label_file, f"[{i}].name", file_name,
                              f"duplicate image (first at [{seen[file_name]}])")
        seen[file_name] = i
        if file_name not in on_disk:
            missing.append(file_name)
            continue
        size = resolve_size(image_root / file_name, IMAGE_SIZE, opts, issues, label_file)
        if size is None:
            continue
        iid = builder.add_image(file_name, *size)
        objs = entry.get("labels") or []
        if not isinstance(objs, list):
            issues.add(MALFORMED_OBJECT, label_file, f"[{i}].labels", "expected a list")
            continue
        for j, obj in enumerate(objs):
            where = f"[{i}].labels[{j}]"
            if not isinstance(obj, dict):
                issues.add(MALFORMED_OBJECT, label_file, f"{where} ({file_name})",
                           f"expected an object, got {type(obj).__name__}")
                continue
            category = obj.get("category")
            if category in BDD_UNMAPPED:
                unmapped[category] += 1
                continue
            if category not in BDD_TO_CITYSCAPES:
                issues.add(UNKNOWN_CLASS, label_file, f"{where} ({file_name})",
                           f"category {category!r} is not a BDD100K category")
                continue
            box = _box(obj)
            if box is None:
                issues.add(MALFORMED_OBJECT, label_file, f"{where} ({file_name})",
                           f"{category}: missing or non-numeric box2d {obj.get('box2d')!r}")
                continue
            xyxy = sanitize_xyxy(box, size[0], size[1], issues, label_file,
                                 f"{where} ({file_name})")
            if xyxy is None:
                continue
            attrs = obj.get("attributes") if isinstance(obj.get("attributes"), dict) else {}
            builder.add_box(iid, BDD_TO_CITYSCAPES[category], xyxy,
                            iscrowd=int(bool(attrs.get("crowd", False))))
    check_missing(name, missing, label_file, image_root, opts, issues)
    extra_files = sorted(set(on_disk) - set(seen))
    check_count(name, len(builder.images), opts, missing=missing, extra=extra_files)
    return [finish_split(
        name, builder, dataset="bdd100k", domain="bdd100k", image_root=image_root, opts=opts,
        issues=issues, sources=hasher.manifest_extra(),
        extra={"label_file": label_file.name, "class_mapping": BDD_TO_CITYSCAPES,
               "unmapped_boxes": dict(sorted(unmapped.items()))},
    )]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "the bdd100k directory (images/100k/val/, labels/)")
    parser.add_argument("--labels", type=Path, default=None,
                        help="the val detection label JSON (default: labels/det_20/det_val.json "
                             "or labels/bdd100k_labels_images_val.json under --raw)")


@preparer("bdd100k", add_arguments=add_arguments)
def prepare(args: argparse.Namespace) -> list[PreparedSplit]:
    """BDD100K val detection labels -> bdd100k_val (Cityscapes classes)."""
    splits = prepare_bdd100k(args.raw, Options.from_args(args),
                             labels=getattr(args, "labels", None))
    return with_corruptions(args, splits)
