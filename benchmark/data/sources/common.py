"""What every raw-dataset converter shares: options, the issue log, box sanitising, image-file
reconciliation, expected counts, source hashing and the final write.

Policy (the dataset cards under ``datasets/`` repeat it):

* **File-level problems are errors**: a missing folder or annotation file, malformed XML/JSON,
  a malformed image record, duplicate ids inside a JSON file.
* **Image-set mismatches** (listed images missing on disk, an image count that differs from the
  published one) are errors unless ``--allow-partial``; the message names the missing/extra files.
* **Annotation-level problems are repaired or dropped and reported**: boxes reaching outside the
  image are clipped to it (counted), boxes with no area left (zero-area, inverted, or entirely
  outside) are dropped, objects of unknown classes or with malformed fields are dropped,
  duplicate entries of a list file are dropped, an image whose size the annotation lacks has it
  read from the image header. Every one is printed in the summary and stored in
  ``<split>/issues.json``; ``--strict`` turns any of them into a :class:`DataError`.

It is over 400 lines because it is the one place this policy is implemented: splitting it
would spread one rule over several modules every converter imports.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import DataError, MissingFileError
from benchmark.store import atomic_write_json, sha256_lines

# ---------------------------------------------------------------------------------------------
# Class lists
# ---------------------------------------------------------------------------------------------

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)  # fmt: skip

#: Cityscapes labels with hasInstances and not ignoreInEval, in cityscapesScripts id order
#: (24, 25, 26, 27, 28, 31, 32, 33) — detectron2's contiguous order.
CITYSCAPES_CLASSES: tuple[str, ...] = (
    "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip

#: COCO 2017's 80 detection classes in category-id order (ids 1..90 with gaps in the JSON;
#: prepared splits renumber them 1..80 in this order and keep the original as ``source_id``).
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Expected image counts: one table, checked by every converter
# ---------------------------------------------------------------------------------------------

#: split name -> (number of images, where the number comes from).
EXPECTED_IMAGES: dict[str, tuple[int, str]] = {
    "voc07_trainval": (5011, "VOC2007 ImageSets/Main/trainval.txt; Liu et al. IJCV 2020 Tab. 3"),
    "voc07_test": (4952, "VOC2007 ImageSets/Main/test.txt; Liu et al. IJCV 2020 Tab. 3"),
    "voc12_trainval": (11540, "VOC2012 ImageSets/Main/trainval.txt; Liu et al. IJCV 2020 Tab. 3"),
    "voc0712_trainval": (16551, "5011 (VOC2007 trainval) + 11540 (VOC2012 trainval)"),
    "clipart_test": (500, "Inoue et al. CVPR 2018: Clipart1k, 1000 images split 500/500"),
    "watercolor_test": (1000, "Inoue et al. CVPR 2018: Watercolor2k, 2000 images split 1000/1000"),
    "comic_test": (1000, "Inoue et al. CVPR 2018: Comic2k, 2000 images split 1000/1000"),
    "cityscapes_train": (2975, "Cordts et al. CVPR 2016: 2975 train / 500 val / 1525 test"),
    "cityscapes_val": (500, "Cordts et al. CVPR 2016: 2975 train / 500 val / 1525 test"),
    "foggy_cityscapes_val": (500, "Sakaridis et al. IJCV 2018: fog on every Cityscapes image"),
    "bdd100k_val": (10000, "Yu et al. CVPR 2020: 70k train / 10k val / 20k test"),
    "coco_train2017": (118287, "COCO 2017 instances_train2017.json; Liu et al. IJCV 2020 Tab. 3"),
    "coco_val2017": (5000, "COCO 2017 instances_val2017.json; Liu et al. IJCV 2020 Tab. 3"),
}

#: Totals over several splits: checked when all of them are prepared in one call.
EXPECTED_TOTALS: dict[str, tuple[int, str]] = {
    "coco_o": (6782, "COCO-O README (github.com/alibaba/easyrobust, benchmarks/coco_o): "
               "6 domains, 6,782 images, 26,624 boxes"),
}

# ---------------------------------------------------------------------------------------------
# Issues: every dropped or repaired annotation
# ---------------------------------------------------------------------------------------------

CLIPPED = "box clipped to the image"
OUTSIDE = "box outside the image dropped"
ZERO_AREA = "zero-area box dropped"
UNKNOWN_CLASS = "unknown class dropped"
MALFORMED_OBJECT = "malformed object dropped"
DUPLICATE_IMAGE = "duplicate image entry dropped"
SIZE_FROM_HEADER = "image size read from the image header"
SIZE_MISMATCH = "annotated image size differs from the image header"
UNREADABLE_IMAGE = "unreadable image skipped"
MISSING_IMAGE = "missing image skipped (--allow-partial)"
MISSING_ANNOTATION = "missing annotation file skipped (--allow-partial)"

#: Kinds that --allow-partial (not --strict) governs.
PARTIAL_KINDS = frozenset({MISSING_IMAGE, MISSING_ANNOTATION})

#: Float noise tolerated silently when clipping (COCO boxes overshoot by ~1e-4 px).
CLIP_TOLERANCE = 1e-2

SUMMARY_LINES_PER_KIND = 10


@dataclass(frozen=True)
class Issue:
    kind: str
    file: str
    where: str
    detail: str

    def line(self) -> str:
        where = f": {self.where}" if self.where else ""
        return f"{self.file}{where}: {self.detail}"


@dataclass
class IssueLog:
    items: list[Issue] = field(default_factory=list)

    def add(self, kind: str, file: Path | str, where: str, detail: str) -> None:
        self.items.append(Issue(kind, str(file), where, detail))

    def counts(self) -> Counter[str]:
        return Counter(i.kind for i in self.items)

    def strict_items(self) -> list[Issue]:
        return [i for i in self.items if i.kind not in PARTIAL_KINDS]

    def summary(self, limit: int = SUMMARY_LINES_PER_KIND) -> list[str]:
        if not self.items:
            return ["  no annotation was dropped or repaired"]
        lines = []
        by_kind: dict[str, list[Issue]] = {}
        for item in self.items:
            by_kind.setdefault(item.kind, []).append(item)
        for kind, items in by_kind.items():
            lines.append(f"  {kind}: {len(items)}")
            lines.extend(f"    {i.line()}" for i in items[:limit])
            if len(items) > limit:
                lines.append(f"    ... and {len(items) - limit} more (see issues.json)")
        return lines

    def to_json(self) -> list[dict[str, str]]:
        return [{"kind": i.kind, "file": i.file, "where": i.where, "detail": i.detail}
                for i in self.items]


# ---------------------------------------------------------------------------------------------
# Options and CLI arguments
# ---------------------------------------------------------------------------------------------


@dataclass
class Options:
    """How strictly to convert, where to write, how to report."""

    root: Path | None = None  # data root; None = $BENCH_DATA or datasets/data/
    strict: bool = False
    allow_partial: bool = False
    verify_images: bool = False
    log: Callable[[str], None] = print

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        return cls(
            root=getattr(args, "data_root", None),
            strict=bool(getattr(args, "strict", False)),
            allow_partial=bool(getattr(args, "allow_partial", False)),
            verify_images=bool(getattr(args, "verify_images", False)),
        )


def add_common_arguments(parser: argparse.ArgumentParser, raw_help: str) -> None:
    parser.add_argument("--raw", type=Path, required=True, help=raw_help)
    parser.add_argument(
        "--strict", action="store_true",
        help="fail (exit 2) instead of repairing or dropping any annotation",
    )
    parser.add_argument(
        "--allow-partial", action="store_true",
        help="accept fewer images than published: skip listed images that are missing",
    )
    parser.add_argument(
        "--verify-images", action="store_true",
        help="open every image header (no pixel decoding) to check it is readable and its size",
    )


def parse_list_arg(
    value: str | Sequence[str] | None, allowed: Sequence[str], what: str
) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` → validated list in the order of ``allowed``; None → all."""
    if value is None:
        return list(allowed)
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        raise DataError(
            f"--{what}={value!r}: unknown {what} {unknown} (known: {', '.join(allowed)})"
        )
    return [a for a in allowed if a in items]


def require_dir(path: Path, expected: str, published: str = "") -> Path:
    if not path.is_dir():
        raise MissingFileError(path, expected, published)
    return path


def require_file(path: Path, expected: str, published: str = "") -> Path:
    if not path.is_file():
        raise MissingFileError(path, expected, published)
    return path


# ---------------------------------------------------------------------------------------------
# Source hashing
# ---------------------------------------------------------------------------------------------


class SourceHasher:
    """sha256 of every annotation source file read (hashed from the bytes actually parsed)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.files: dict[str, str] = {}

    def read(self, path: Path) -> bytes:
        data = path.read_bytes()
        self.add(path, data)
        return data

    def key(self, path: Path) -> str:
        try:
            return path.relative_to(self.base).as_posix()
        except ValueError:
            return str(path)

    def add(self, path: Path, data: bytes) -> None:
        self.files[self.key(path)] = hashlib.sha256(data).hexdigest()

    def manifest_extra(self, paths: Iterable[Path] | None = None) -> dict[str, Any]:
        """``source_files``, ``source_sha256`` (over sorted ``"<relpath> <sha256>"`` lines) and,
        for at most 4 files, each file's own sha256 (to compare with published checksums)."""
        keys = sorted(self.files if paths is None else {self.key(p) for p in paths})
        extra: dict[str, Any] = {
            "source_files": len(keys),
            "source_sha256": sha256_lines(f"{k} {self.files[k]}" for k in keys),
        }
        if len(keys) <= 4:
            extra["source_file_sha256"] = {k: self.files[k] for k in keys}
        return extra


# ---------------------------------------------------------------------------------------------
# COCO building and box sanitising
# ---------------------------------------------------------------------------------------------


def fmt_box(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def sanitize_xyxy(
    box: tuple[float, float, float, float], width: int, height: int,
    issues: IssueLog, file: Path | str, where: str,
) -> tuple[float, float, float, float] | None:
    """Clip a continuous-coordinate box to ``[0, width] × [0, height]``; None if nothing is left.

    Clipping by more than :data:`CLIP_TOLERANCE` px is reported (CLIPPED); a box with zero or
    negative width/height as given is ZERO_AREA, one that clipping empties is OUTSIDE.
    """
    x0, y0, x1, y1 = box
    if not (x1 > x0 and y1 > y0):
        issues.add(ZERO_AREA, file, where, f"box xyxy={fmt_box(box)} has no area")
        return None
    cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    if not (cx1 > cx0 and cy1 > cy0):
        issues.add(OUTSIDE, file, where, f"box xyxy={fmt_box(box)} lies outside the "
                   f"{width}x{height} image")
        return None
    overshoot = max(cx0 - x0, cy0 - y0, x1 - cx1, y1 - cy1)
    if overshoot > CLIP_TOLERANCE:
        issues.add(CLIPPED, file, where, f"box xyxy={fmt_box(box)} clipped to "
                   f"{fmt_box((cx0, cy0, cx1, cy1))} ({width}x{height} image)")
    return cx0, cy0, cx1, cy1


def _num(v: float) -> float | int:
    """Keep integral coordinates as ints so the JSON stays readable and exact."""
    return int(v) if float(v).is_integer() else round(float(v), 4)


class CocoBuilder:
    """Accumulates a COCO detection dict with contiguous category ids 1..K."""

    def __init__(self, classes: Sequence[str], categories: list[dict[str, Any]] | None = None):
        self.classes = list(classes)
        self.cat_id = {name: i + 1 for i, name in enumerate(self.classes)}
        self.categories = categories or [
            {"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(self.classes)
        ]
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []

    def add_image(self, file_name: str, width: int, height: int, image_id: int | None = None,
                  **extra: Any) -> int:
        iid = len(self.images) + 1 if image_id is None else image_id
        self.images.append({"id": iid, "file_name": file_name, "width": int(width),
                            "height": int(height), **extra})
        return iid

    def add_box(self, image_id: int, cls: str, xyxy: tuple[float, float, float, float], *,
                iscrowd: int = 0, area: float | None = None, ann_id: int | None = None,
                **extra: Any) -> None:
        x0, y0, x1, y1 = xyxy
        w, h = x1 - x0, y1 - y0
        self.annotations.append({
            "id": len(self.annotations) + 1 if ann_id is None else ann_id,
            "image_id": image_id,
            "category_id": self.cat_id[cls],
            "bbox": [_num(x0), _num(y0), _num(w), _num(h)],
            "area": _num(w * h if area is None else area),
            "iscrowd": int(iscrowd),
            **extra,
        })

    def to_coco(self, info: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "info": info or {},
            "images": self.images,
            "annotations": self.annotations,
            "categories": self.categories,
        }


# ---------------------------------------------------------------------------------------------
# Image files: existence, headers, expected counts
# ---------------------------------------------------------------------------------------------


def list_files(directory: Path, suffixes: tuple[str, ...] | None = None) -> set[str]:
    """Relative posix paths of all files under ``directory`` (one scandir walk, no stat)."""
    out: set[str] = set()
    base = len(str(directory)) + 1
    for dirpath, _dirs, files in os.walk(directory):
        prefix = dirpath[base:].replace(os.sep, "/")
        for f in files:
            if suffixes is None or f.lower().endswith(suffixes):
                out.add(f"{prefix}/{f}" if prefix else f)
    return out


def header_size(path: Path) -> tuple[int, int] | str:
    """(width, height) from the image header (PIL opens lazily: no pixel decoding), or the
    reason it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, UnidentifiedImageError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    if w <= 0 or h <= 0:
        return f"header gives size {w}x{h}"
    return int(w), int(h)


def resolve_size(
    image_path: Path, annotated: tuple[int, int] | None, opts: Options, issues: IssueLog,
    ann_file: Path | str,
) -> tuple[int, int] | None:
    """The image size to use: the annotated one, or the header's where the annotation lacks it
    or (with ``--verify-images``) disagrees. None (reported) if the image cannot be read."""
    if annotated is not None and not opts.verify_images:
        return annotated
    got = header_size(image_path)
    if isinstance(got, str):
        issues.add(UNREADABLE_IMAGE, image_path, "", got)
        return None
    if annotated is None:
        issues.add(SIZE_FROM_HEADER, ann_file, "size",
                   f"missing or invalid; using {got[0]}x{got[1]} from {image_path.name}")
        return got
    if got != annotated:
        issues.add(SIZE_MISMATCH, ann_file, "size", f"annotated {annotated[0]}x{annotated[1]}, "
                   f"{image_path.name} is {got[0]}x{got[1]}; using the header's")
        return got
    return annotated


def _preview(names: Iterable[str], n: int = 5) -> str:
    names = sorted(names)
    shown = ", ".join(names[:n])
    return shown + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def check_missing(
    name: str, missing: Sequence[str], listed_in: Path | str, image_root: Path, opts: Options,
    issues: IssueLog, kind: str = MISSING_IMAGE,
) -> None:
    """Listed files absent on disk: an error naming them, or (--allow-partial) skipped issues."""
    if not missing:
        return
    what = "images" if kind == MISSING_IMAGE else "annotation files"
    if not opts.allow_partial:
        raise DataError(
            f"{listed_in}: {name}: {len(missing)} listed {what} missing under {image_root}: "
            f"{_preview(missing)} (use --allow-partial to prepare the rest)"
        )
    for m in missing:
        issues.add(kind, image_root / m, "", f"listed in {listed_in}")


def check_count(
    name: str, found: int, opts: Options, *, expected_key: str | None = None,
    missing: Sequence[str] = (), extra: Iterable[str] = (),
) -> None:
    """Compare with :data:`EXPECTED_IMAGES`; a mismatch is an error unless --allow-partial."""
    key = expected_key or name
    if key not in EXPECTED_IMAGES:
        return
    expected, source = EXPECTED_IMAGES[key]
    if found == expected:
        return
    extra = list(extra)
    details = []
    if missing:
        details.append(f"missing: {_preview(missing)}")
    if extra:
        details.append(f"extra (on disk, not annotated): {_preview(extra)}")
    msg = (f"{name}: {found} images, expected {expected} ({source})"
           + (f"; {'; '.join(details)}" if details else ""))
    if not opts.allow_partial:
        raise DataError(msg + " (use --allow-partial to accept a partial split)")
    opts.log(f"[{name}] warning: {msg}")


def check_total(key: str, found: int, opts: Options) -> None:
    expected, source = EXPECTED_TOTALS[key]
    if found == expected:
        return
    msg = f"{key}: {found} images in all, expected {expected} ({source})"
    if not opts.allow_partial:
        raise DataError(msg + " (use --allow-partial to accept a partial set)")
    opts.log(f"[{key}] warning: {msg}")


# ---------------------------------------------------------------------------------------------
# Final write
# ---------------------------------------------------------------------------------------------

ISSUES_FILE = "issues.json"


def with_corruptions(args: argparse.Namespace, splits: list) -> list:
    """Honour the CLI's common ``--corruptions``/``--severities`` (default ``none``): corrupted
    copies of every *evaluation* split prepared (names without ``train``), e.g. Pascal-C from
    voc07_test, Cityscapes-C from cityscapes_val, COCO-C from coco_val2017."""
    spec = getattr(args, "corruptions", None)
    if not spec or spec == "none":
        return splits
    from benchmark.data.corrupt import build_corrupted_splits, corruption_names, parse_severities

    names = corruption_names(spec)
    severities = parse_severities(getattr(args, "severities", "1-5"))
    out = list(splits)
    for split in splits:
        if names and "train" not in split.name:
            out += build_corrupted_splits(
                split, names, severities, root=getattr(args, "data_root", None),
                global_seed=getattr(args, "seed", 0), workers=getattr(args, "workers", 1),
                progress=getattr(args, "progress", False),
            )
    return out


def decode_all(coco: dict[str, Any], image_root: Path) -> None:
    """Decode every image of ``coco`` completely; the first that does not decode, or whose
    size differs from its annotation, is a :class:`DataError` naming the file."""
    from PIL import Image

    for img in coco["images"]:
        path = image_root / img["file_name"]
        try:
            with Image.open(path) as im:
                im.load()
                size = im.size
        except Exception as e:  # noqa: BLE001 - PIL raises many kinds for damaged files
            raise DataError(f"{path}: does not decode ({type(e).__name__}: {e})") from None
        if size != (img["width"], img["height"]):
            raise DataError(f"{path}: decodes to {size[0]}x{size[1]}, annotated as "
                            f"{img['width']}x{img['height']}")


def finish_split(
    name: str, builder: CocoBuilder, *, dataset: str, domain: str, image_root: Path,
    opts: Options, issues: IssueLog, sources: dict[str, Any], extra: dict[str, Any] | None = None,
):  # -> PreparedSplit (imported lazily to keep this module light)
    """Print the summary, enforce --strict, write the split and its issue list."""
    from benchmark.data.split import split_dir, write_split

    coco = builder.to_coco({"description": f"{name} prepared from {dataset}"})
    counts = issues.counts()
    opts.log(f"[{name}] {len(coco['images'])} images, {len(coco['annotations'])} boxes, "
             f"{len(builder.classes)} classes; {len(issues.items)} annotation issue(s)")
    for line in issues.summary():
        opts.log(line)
    strict_items = issues.strict_items()
    if opts.strict and strict_items:
        first = strict_items[0]
        kinds = Counter(i.kind for i in strict_items)
        raise DataError(
            f"{name}: {len(strict_items)} annotation issue(s) under --strict "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(kinds.items()))}); "
            f"first: {first.line()} [{first.kind}]"
        )
    if opts.strict:  # every image decodes (a damaged JPEG is found now, not mid-training)
        decode_all(coco, image_root)
    # issues.json first: the manifest (written last by write_split) marks the split complete
    atomic_write_json(split_dir(name, opts.root) / ISSUES_FILE, issues.to_json())
    return write_split(
        name, coco, dataset=dataset, domain=domain, image_root=image_root.resolve(),
        root=opts.root,
        extra={**sources, "issues": dict(sorted(counts.items())), **(extra or {})},
    )
