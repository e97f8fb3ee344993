"""Pascal VOC XML layout, shared by VOC 2007/2012 and Clipart1k / Watercolor2k / Comic2k.

Layout of one dataset directory (``VOCdevkit/VOC2007``, ``clipart``, ...)::

    Annotations/<id>.xml   JPEGImages/<id>.jpg   ImageSets/Main/<set>.txt (one id per line)

Coordinate convention (detectron2's ``pascal_voc.py``): VOC boxes are 1-based, inclusive pixel
indices, so a box covering pixels ``xmin..xmax`` becomes the continuous box
``[xmin - 1, ymin - 1, xmax, ymax]``, i.e. COCO ``bbox = [xmin - 1, ymin - 1,
xmax - xmin + 1, ymax - ymin + 1]``. Image sizes come from ``<size>``; the image header is read
only where ``<size>`` is missing or invalid (or with ``--verify-images``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.data.sources.common import (
    DUPLICATE_IMAGE,
    MALFORMED_OBJECT,
    MISSING_ANNOTATION,
    MISSING_IMAGE,
    UNKNOWN_CLASS,
    CocoBuilder,
    IssueLog,
    Options,
    SourceHasher,
    check_missing,
    list_files,
    require_dir,
    require_file,
    resolve_size,
    sanitize_xyxy,
)
from benchmark.errors import DataError

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class VocObject:
    index: int
    name: str
    difficult: int
    xyxy: Box  # continuous coordinates (detectron2 convention, see module docstring)


@dataclass
class VocXml:
    size: tuple[int, int] | None  # (width, height); None when <size> is missing or invalid
    objects: list[VocObject]


def _int_or_none(text: str | None) -> int | None:
    try:
        v = int(float(text))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


def parse_voc_xml(data: bytes, path: Path, classes: Sequence[str], issues: IssueLog) -> VocXml:
    """Parse one annotation file; malformed XML is a :class:`DataError` naming line and column,
    malformed objects and unknown classes are dropped and logged with their object index."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        line, col = e.position
        raise DataError(f"{path}: malformed XML at line {line}, column {col}: {e}") from None
    size_el = root.find("size")
    size = None
    if size_el is not None:
        w, h = _int_or_none(size_el.findtext("width")), _int_or_none(size_el.findtext("height"))
        size = (w, h) if w is not None and h is not None else None
    known = set(classes)
    objects: list[VocObject] = []
    for i, obj in enumerate(root.findall("object")):
        name = (obj.findtext("name") or "").strip()
        where = f"object[{i}] ({name or '<no name>'})"
        if name not in known:
            issues.add(UNKNOWN_CLASS, path, where, f"class {name!r} is not one of the "
                       f"{len(classes)} classes")
            continue
        diff_text = (obj.findtext("difficult") or "0").strip()
        if diff_text not in ("0", "1"):
            issues.add(MALFORMED_OBJECT, path, where, f"difficult={diff_text!r} is not 0 or 1")
            continue
        bb = obj.find("bndbox")
        if bb is None:
            issues.add(MALFORMED_OBJECT, path, where, "no <bndbox>")
            continue
        try:
            xmin, ymin, xmax, ymax = (float(bb.findtext(k) or "") for k in
                                      ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            vals = {k: bb.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")}
            issues.add(MALFORMED_OBJECT, path, where, f"non-numeric <bndbox> {vals}")
            continue
        objects.append(VocObject(i, name, int(diff_text), (xmin - 1.0, ymin - 1.0, xmax, ymax)))
    return VocXml(size, objects)


@dataclass
class ImageRecord:
    file_name: str  # relative to the split's image root
    width: int
    height: int
    boxes: list[tuple[str, Box, int]]  # (class, xyxy, difficult)


@dataclass
class VocSet:
    """One image set of one VOC-layout directory, parsed and sanitised."""

    label: str  # e.g. "VOC2007 trainval"
    list_file: Path
    listed: int
    records: list[ImageRecord] = field(default_factory=list)
    issues: IssueLog = field(default_factory=IssueLog)
    missing: list[str] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)  # annotation files read (for hashing)


def read_image_set(list_file: Path, hasher: SourceHasher, issues: IssueLog) -> list[str]:
    """Ids in file order; a repeated id is dropped and logged with its line number."""
    try:
        text = hasher.read(list_file).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{list_file}: not UTF-8 text: {e}") from None
    ids: list[str] = []
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        image_id = tokens[0]
        if image_id in first_line:
            issues.add(DUPLICATE_IMAGE, list_file, f"line {lineno}",
                       f"id {image_id!r} already listed at line {first_line[image_id]}")
            continue
        first_line[image_id] = lineno
        ids.append(image_id)
    return ids


def load_voc_set(
    dataset_dir: Path, image_set: str, *, classes: Sequence[str], rel_prefix: str,
    image_root: Path, opts: Options, hasher: SourceHasher, published: str = "",
) -> VocSet:
    """Parse ``ImageSets/Main/<image_set>.txt`` and every listed annotation.

    ``rel_prefix`` is prepended to ``JPEGImages/<id>.jpg`` to form file names relative to
    ``image_root`` (e.g. ``"VOC2007/"`` when the image root is ``VOCdevkit``).
    """
    require_dir(dataset_dir, "a VOC-layout directory (Annotations/, JPEGImages/, ImageSets/)",
                published)
    ann_dir = require_dir(dataset_dir / "Annotations", "VOC XML annotations", published)
    img_dir = require_dir(dataset_dir / "JPEGImages", "JPEG images", published)
    list_file = require_file(dataset_dir / "ImageSets" / "Main" / f"{image_set}.txt",
                             f"the {image_set!r} image list", published)
    vset = VocSet(f"{dataset_dir.name} {image_set}", list_file, 0, sources=[list_file])
    ids = read_image_set(list_file, hasher, vset.issues)
    vset.listed = len(ids)
    on_disk = list_files(img_dir)
    missing_ann: list[str] = []
    for image_id in ids:
        jpg = f"{image_id}.jpg"
        xml_path = ann_dir / f"{image_id}.xml"
        if jpg not in on_disk:
            vset.missing.append(f"{rel_prefix}JPEGImages/{jpg}")
            continue
        try:
            data = hasher.read(xml_path)
        except FileNotFoundError:
            missing_ann.append(f"{rel_prefix}Annotations/{image_id}.xml")
            continue
        vset.sources.append(xml_path)
        parsed = parse_voc_xml(data, xml_path, classes, vset.issues)
        size = resolve_size(img_dir / jpg, parsed.size, opts, vset.issues, xml_path)
        if size is None:
            continue
        w, h = size
        boxes = []
        for obj in parsed.objects:
            where = f"object[{obj.index}] ({obj.name})"
            xyxy = sanitize_xyxy(obj.xyxy, w, h, vset.issues, xml_path, where)
            if xyxy is not None:
                boxes.append((obj.name, xyxy, obj.difficult))
        vset.records.append(ImageRecord(f"{rel_prefix}JPEGImages/{jpg}", w, h, boxes))
    check_missing(vset.label, vset.missing, list_file, image_root, opts, vset.issues, MISSING_IMAGE)
    check_missing(vset.label, missing_ann, list_file, image_root, opts, vset.issues,
                  MISSING_ANNOTATION)
    return vset


def build_coco(sets: Sequence[VocSet], classes: Sequence[str]) -> tuple[CocoBuilder, IssueLog]:
    """One COCO dict (image ids 1..N in list order) from one or more parsed sets."""
    builder = CocoBuilder(classes)
    issues = IssueLog()
    for vset in sets:
        issues.items.extend(vset.issues.items)
        for rec in vset.records:
            iid = builder.add_image(rec.file_name, rec.width, rec.height)
            for cls, xyxy, difficult in rec.boxes:
                builder.add_box(iid, cls, xyxy, difficult=difficult)
    return builder, issues
