"""The prepared-split format every dataset is converted into.

A prepared split is a directory ``<data_root>/<name>/`` holding

* ``annotations.json`` — COCO detection format: ``images`` (id, file_name, width, height),
  ``annotations`` (id, image_id, category_id, bbox = [x, y, w, h] in pixels, area, iscrowd,
  optional ``difficult`` 0/1 which evaluation ignores the way VOC does), ``categories``
  (ids 1..K, contiguous, in class-list order);
* ``manifest.json`` — written last, so its presence means the split is complete: name,
  dataset, domain, image_root (relative to the split directory unless absolute, so raw
  datasets can be referenced in place), num_images, classes, per_class_boxes,
  annotation_sha256, image_list_sha256 and any ``extra`` keys (e.g. the corruption).

Corrupted variants of a split are ordinary splits named ``<base>-C.<corruption>.<severity>``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from benchmark.errors import DataError, field_error
from benchmark.spec import corrupted_split_channel_order, parse_corrupted_split_name
from benchmark.store import (
    atomic_write_bytes,
    atomic_write_json,
    canonical_json,
    data_root,
    sha256_bytes,
    sha256_file,
    sha256_lines,
)

ANNOTATIONS = "annotations.json"
MANIFEST = "manifest.json"
FILES = "files.json"  # {file_name: [size, sha256]} of every image (benchmark.data.verify)


def split_dir(name: str, root: Path | None = None) -> Path:
    return Path(root if root is not None else data_root()) / name


@dataclass(frozen=True)
class PreparedSplit:
    name: str
    root: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def annotation_path(self) -> Path:
        return self.root / ANNOTATIONS

    @property
    def image_root(self) -> Path:
        return (self.root / self.manifest.get("image_root", "images")).resolve()

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def fingerprint(self) -> str:
        """Content hash used in run fingerprints: annotations + image list (+ extra)."""
        m = self.manifest
        keys = ("annotation_sha256", "image_list_sha256", "images_sha256", "files_sha256")
        return sha256_bytes(canonical_json({k: m.get(k) for k in keys}).encode())

    def image_path(self, file_name: str) -> Path:
        return self.image_root / file_name

    @cached_property
    def coco(self) -> dict[str, Any]:
        with open(self.annotation_path, encoding="utf-8") as f:
            return json.load(f)


def validate_coco(coco: Any, source: Path | str) -> None:
    """Raise :class:`DataError` naming file, field and value for the first problem found."""
    if not isinstance(coco, dict):
        raise field_error(DataError, source, "<root>", type(coco).__name__, "expected an object")
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise field_error(DataError, source, key, None, "missing required key")
        if not isinstance(coco[key], list):
            raise field_error(DataError, source, key, type(coco[key]).__name__, "expected a list")

    cat_ids: set[int] = set()
    for i, cat in enumerate(coco["categories"]):
        for key in ("id", "name"):
            if key not in cat:
                raise field_error(DataError, source, f"categories[{i}].{key}", None, "missing")
        if cat["id"] in cat_ids:
            raise field_error(DataError, source, f"categories[{i}].id", cat["id"], "duplicate id")
        cat_ids.add(cat["id"])

    image_ids: set[int] = set()
    for i, img in enumerate(coco["images"]):
        for key in ("id", "file_name", "width", "height"):
            if key not in img:
                raise field_error(DataError, source, f"images[{i}].{key}", None, "missing")
        if img["id"] in image_ids:
            raise field_error(DataError, source, f"images[{i}].id", img["id"], "duplicate id")
        for key in ("width", "height"):
            if not isinstance(img[key], int) or img[key] <= 0:
                raise field_error(
                    DataError, source, f"images[{i}].{key}", img[key], "must be a positive int"
                )
        image_ids.add(img["id"])

    ann_ids: set[int] = set()
    for i, ann in enumerate(coco["annotations"]):
        for key in ("id", "image_id", "category_id", "bbox"):
            if key not in ann:
                raise field_error(DataError, source, f"annotations[{i}].{key}", None, "missing")
        if ann["id"] in ann_ids:
            raise field_error(DataError, source, f"annotations[{i}].id", ann["id"], "duplicate id")
        ann_ids.add(ann["id"])
        if ann["image_id"] not in image_ids:
            raise field_error(
                DataError, source, f"annotations[{i}].image_id", ann["image_id"], "unknown image id"
            )
        if ann["category_id"] not in cat_ids:
            raise field_error(
                DataError,
                source,
                f"annotations[{i}].category_id",
                ann["category_id"],
                "unknown category id",
            )
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise field_error(
                DataError, source, f"annotations[{i}].bbox", bbox, "expected [x,y,w,h]"
            )
        if not all(isinstance(v, int | float) for v in bbox) or bbox[2] <= 0 or bbox[3] <= 0:
            raise field_error(
                DataError, source, f"annotations[{i}].bbox", bbox, "width and height must be > 0"
            )


def build_manifest(
    name: str,
    coco: dict[str, Any],
    *,
    dataset: str,
    domain: str,
    image_root: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    cats = sorted(coco["categories"], key=lambda c: c["id"])
    names = {c["id"]: c["name"] for c in cats}
    counts = Counter(names[a["category_id"]] for a in coco["annotations"])
    return {
        "name": name,
        "dataset": dataset,
        "domain": domain,
        "image_root": image_root,
        "num_images": len(coco["images"]),
        "num_boxes": len(coco["annotations"]),
        "classes": [c["name"] for c in cats],
        "per_class_boxes": {n: counts.get(n, 0) for n in names.values()},
        "annotation_sha256": sha256_bytes(canonical_json(coco).encode()),
        "image_list_sha256": sha256_lines(sorted(i["file_name"] for i in coco["images"])),
        **(extra or {}),
    }


def write_split(
    name: str,
    coco: dict[str, Any],
    *,
    dataset: str,
    domain: str,
    image_root: str | Path = "images",
    root: Path | None = None,
    extra: dict[str, Any] | None = None,
) -> PreparedSplit:
    """Validate and write a split atomically (annotations, then the size and sha256 of every
    image file, then the manifest last). Every image must exist."""
    out = split_dir(name, root)
    validate_coco(coco, out / ANNOTATIONS)
    manifest = build_manifest(
        name, coco, dataset=dataset, domain=domain, image_root=str(image_root), extra=extra
    )
    images = PreparedSplit(name, out, manifest)
    files = {}
    for i, img in enumerate(coco["images"]):
        path = images.image_path(img["file_name"])
        if not path.is_file():
            raise field_error(DataError, out / ANNOTATIONS, f"images[{i}].file_name",
                              img["file_name"], f"image not found at {path}")
        files[img["file_name"]] = [path.stat().st_size, sha256_file(path)]
    files_json = json.dumps(dict(sorted(files.items())), separators=(",", ":")).encode()
    manifest["files_sha256"] = sha256_bytes(files_json)
    atomic_write_json(out / ANNOTATIONS, coco)
    atomic_write_bytes(out / FILES, files_json)
    atomic_write_json(out / MANIFEST, manifest)
    return PreparedSplit(name, out, manifest)


def load_split(name: str, root: Path | None = None, *, check_images: bool = True) -> PreparedSplit:
    """Load and validate a prepared split; every problem names the file, field and value."""
    out = split_dir(name, root)
    manifest_path = out / MANIFEST
    if not manifest_path.is_file():
        raise DataError(
            f"{manifest_path}: prepared split {name!r} not found "
            f"(run `python -m benchmark.prepare` for its dataset first)"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{manifest_path}: malformed JSON: {e}") from None
    split = PreparedSplit(name, out, manifest)
    try:
        coco = split.coco
    except FileNotFoundError:
        raise DataError(f"{split.annotation_path}: missing annotation file") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{split.annotation_path}: malformed JSON: {e}") from None
    validate_coco(coco, split.annotation_path)
    if check_images:
        for i, img in enumerate(coco["images"]):
            path = split.image_path(img["file_name"])
            if not path.is_file():
                raise field_error(
                    DataError,
                    split.annotation_path,
                    f"images[{i}].file_name",
                    img["file_name"],
                    f"image not found at {path}",
                )
    return split


def load_if_complete(
    name: str, root: Path | None, expected: dict[str, Any]
) -> PreparedSplit | None:
    """The split if it is complete, valid and its manifest has every ``expected`` key/value
    (how builders skip work already done); else None, and the builder writes it again."""
    if not (split_dir(name, root) / MANIFEST).is_file():
        return None
    try:
        split = load_split(name, root, check_images=True)
    except DataError:
        return None
    complete = "files_sha256" in split.manifest  # older versions wrote no image hashes
    return split if complete and all(split.manifest.get(k) == v for k, v in expected.items()) \
        else None


#: The version of the code that makes corrupted pixels (:mod:`benchmark.data.corrupt`): bump
#: when the pixels of a corrupted image change for the same package version (recorded in the
#: params of materialised splits, so that older ones are rebuilt, not reused; part of an
#: on-the-fly split's fingerprint).
CORRUPTION_CODE = "benchmark.data.corrupt/2"  # 2: SIMD-independent (benchmark.data.isa)


@dataclass(frozen=True)
class ResolvedSplit:
    """What an eval split name reads: a prepared split, corrupted on the fly when the
    ``<base>-C.<corruption>.<severity>`` split is not materialised but its base is."""

    name: str
    split: PreparedSplit
    corruption: tuple[str, int, str] | None = None  # (name, severity, channel order)

    @property
    def fingerprint(self) -> str:
        if self.corruption is None:
            return self.split.fingerprint
        c, sev, order = self.corruption
        key = f"on-the-fly/{self.split.fingerprint}/{c}/{sev}/global_seed=0"
        if order != "rgb":  # the default is left out: earlier fingerprints hold
            key += f"/{order}"
        # the code that makes the pixels (a materialised split hashes its pixels instead)
        return sha256_bytes(f"{key}/{CORRUPTION_CODE}".encode())


def resolve_split(
    name: str, root: Path | None = None, *, check_images: bool = True
) -> ResolvedSplit:
    """A materialised split if there is one; else, for a corrupted split name, its base
    split with the corruption applied on the fly (same pixels: ``benchmark.data.corrupt``)."""
    parsed = parse_corrupted_split_name(name)
    if parsed is None or (split_dir(name, root) / MANIFEST).is_file():
        return ResolvedSplit(name, load_split(name, root, check_images=check_images))
    base, corruption, severity = parsed
    try:
        split = load_split(base, root, check_images=check_images)
    except DataError as e:
        raise DataError(
            f"{split_dir(name, root)}: corrupted split {name!r} is neither built "
            f"(`python -m benchmark.prepare corrupt {base}`) nor can it be made on the fly: {e}"
        ) from None
    return ResolvedSplit(name, split, (corruption, severity, corrupted_split_channel_order(name)))
