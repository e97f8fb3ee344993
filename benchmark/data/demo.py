"""A generated ID/OOD detection benchmark in miniature (see datasets/demo.md).

Objects cut from photographs that ship with scikit-image are pasted onto its brick / grass /
gravel textures. ``demo_train`` / ``demo_test`` are the photographic (in-distribution)
domain; ``demo_stylized`` / ``demo_sketch`` / ``demo_inked`` render the same test scenes
(same boxes) in non-photographic styles. Everything is a pure function of the seed, and the
same on every x86-64 CPU (OpenCV is pinned to its baseline code: :mod:`benchmark.data.isa`).
"""

from __future__ import annotations

import argparse
import functools
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import skimage
import skimage.data
from tqdm import tqdm

from benchmark.data import IMAGE_HASH, pixel_sha256, preparer, write_png
from benchmark.data.isa import pin_opencv
from benchmark.data.split import (
    MANIFEST,
    PreparedSplit,
    load_if_complete,
    split_dir,
    write_split,
)
from benchmark.data.stylize import STYLES
from benchmark.errors import ConfigError
from benchmark.store import sha256_lines

GENERATOR = "benchmark.data.demo/2"  # bump when the rendering changes (2: pin_opencv)
TRAIN, TEST = "demo_train", "demo_test"
OOD_SPLITS = {f"demo_{style}": style for style in STYLES}  # demo_stylized, demo_sketch, demo_inked
#: the first ``n_corrupt`` test scenes, photo domain: the clean base of the corrupted copies
#: (fewer images per corruption keeps the 15-corruption sweep cheap on a CPU)
CORRUPT_BASE = "demo_test10"
SPLITS = (TRAIN, TEST, *OOD_SPLITS, CORRUPT_BASE)

MIN_HEIGHT, MAX_HEIGHT = 36, 80
MAX_OBJECTS = 4
MAX_OVERLAP = 0.3  # intersection / smaller box area allowed between two objects
_CUT_SCALE = 0.5  # photos are halved before cutting: objects are pasted at most 80 px tall


@dataclass(frozen=True)
class _Source:
    photo: str  # skimage.data function
    rect: tuple[int, int, int, int]  # x, y, w, h around the object, full-resolution pixels
    background: tuple[tuple[tuple[int, int], ...], ...] = ()  # polygons known to be background
    foreground: tuple[tuple[int, int, int, int], ...] = ()  # ellipses (cx, cy, rx, ry) known fg


# Hand-chosen GrabCut prompts; the masks they give were checked by eye.
_SOURCES: dict[str, _Source] = {
    "cat": _Source("chelsea", (0, 0, 400, 300)),
    "cup": _Source("coffee", (70, 15, 420, 380)),
    "person": _Source(
        "astronaut",
        (18, 10, 345, 502),
        (
            ((355, 0), (512, 0), (512, 512), (355, 512)),  # the shuttle model
            tuple(map(tuple, cv2.ellipse2Poly((395, 450), (112, 104), 0, 0, 360, 10))),  # helmet
        ),
        ((210, 205, 70, 40),),  # the black collar inside the neck ring
    ),
    "rocket": _Source("rocket", (295, 120, 50, 290)),
}
CLASSES: tuple[str, ...] = tuple(_SOURCES)

# Greyscale textures and the base colour each is tinted with.
_TEXTURES: dict[str, tuple[float, float, float]] = {
    "brick": (1.0, 0.62, 0.5),
    "grass": (0.6, 0.95, 0.45),
    "gravel": (0.9, 0.85, 0.75),
}


@dataclass(frozen=True)
class Cutout:
    name: str
    rgb: np.ndarray  # (h, w, 3) uint8, cropped to the mask's extent
    mask: np.ndarray  # (h, w) bool


def _photo(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    return image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disp)


def _grabcut(image: np.ndarray, src: _Source) -> np.ndarray:
    pin_opencv()
    small = cv2.resize(image, None, fx=_CUT_SCALE, fy=_CUT_SCALE, interpolation=cv2.INTER_AREA)
    x, y, w, h = (int(v * _CUT_SCALE) for v in src.rect)
    mask = np.full(small.shape[:2], cv2.GC_BGD, np.uint8)
    mask[y : y + h, x : x + w] = cv2.GC_PR_FGD
    for poly in src.background:
        cv2.fillPoly(mask, [np.int32(np.array(poly) * _CUT_SCALE)], cv2.GC_BGD)
    for ellipse in src.foreground:
        cx, cy, rx, ry = (round(v * _CUT_SCALE) for v in ellipse)
        cv2.ellipse(mask, (cx, cy), (rx, ry), 0, 0, 360, cv2.GC_FGD, thickness=-1)
    cv2.setRNGSeed(0)  # GrabCut's k-means initialisation draws from OpenCV's RNG
    models = np.zeros((1, 65)), np.zeros((1, 65))
    bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
    cv2.grabCut(bgr, mask, None, *models, 8, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    keep = labels == largest
    ys, xs = np.nonzero(keep)
    box = np.s_[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return np.stack([*np.moveaxis(small[box], 2, 0), keep[box].astype(np.uint8)], axis=2)


@functools.cache
def cutouts() -> tuple[Cutout, ...]:
    """The object photos and their foreground masks, one per class (computed once per process)."""
    out = []
    for name, src in _SOURCES.items():
        rgba = _grabcut(_photo(src.photo), src)
        out.append(Cutout(name, np.ascontiguousarray(rgba[..., :3]), rgba[..., 3] > 0))
    return tuple(out)


@functools.cache
def _texture(name: str) -> np.ndarray:
    return getattr(skimage.data, name)().astype(np.float32) / 255.0


# ---------------------------------------------------------------------------- scenes


@dataclass(frozen=True)
class Placement:
    label: int  # index into CLASSES
    x: int  # top-left corner of the resized cutout
    y: int
    height: int  # resized cutout size
    width: int
    flip: bool
    gain: float  # brightness factor


@dataclass(frozen=True)
class Scene:
    texture: str
    crop: tuple[int, int, int]  # x, y, side of the square texture crop
    rotation: int  # quarter turns
    tint: tuple[float, float, float]
    objects: tuple[Placement, ...]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / min(a[2] * a[3], b[2] * b[3])


def sample_scene(rng: np.random.Generator, size: int) -> Scene:
    texture = list(_TEXTURES)[int(rng.integers(len(_TEXTURES)))]
    full = _texture(texture).shape[0]
    side = int(rng.integers(full // 3, full + 1))
    crop = (int(rng.integers(0, full - side + 1)), int(rng.integers(0, full - side + 1)), side)
    base = np.array(_TEXTURES[texture]) * rng.uniform(0.85, 1.15, 3) * rng.uniform(0.75, 1.15)
    tint = (float(base[0]), float(base[1]), float(base[2]))
    objects: list[Placement] = []
    cuts = cutouts()
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        label = int(rng.integers(len(cuts)))
        ch, cw = cuts[label].mask.shape
        height = int(rng.integers(MIN_HEIGHT, MAX_HEIGHT + 1))
        width = max(1, round(height * cw / ch))
        if width > size:  # very wide object: shrink to fit
            height, width = max(1, round(size * ch / cw)), size
        flip, gain = bool(rng.random() < 0.5), float(rng.uniform(0.85, 1.15))
        for _try in range(30):
            x, y = int(rng.integers(0, size - width + 1)), int(rng.integers(0, size - height + 1))
            box = (x, y, width, height)
            if all(_overlap(box, (o.x, o.y, o.width, o.height)) <= MAX_OVERLAP for o in objects):
                objects.append(Placement(label, x, y, height, width, flip, gain))
                break
    return Scene(texture, crop, int(rng.integers(4)), tint, tuple(objects))


def render_background(scene: Scene, size: int) -> np.ndarray:
    pin_opencv()
    x, y, side = scene.crop
    patch = _texture(scene.texture)[y : y + side, x : x + side]
    patch = np.rot90(cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA), scene.rotation)
    rgb = patch[:, :, None] * np.array(scene.tint, np.float32) * 255.0
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def paste(
    canvas: np.ndarray, rgb: np.ndarray, mask: np.ndarray, x: int, y: int
) -> tuple[int, int, int, int] | None:
    """Copy ``rgb`` where ``mask`` is set onto ``canvas`` at top-left (x, y), in place.

    Returns the COCO box ``(x, y, w, h)`` of the pasted mask pixels (clipped to the canvas),
    or ``None`` if no pixel landed.
    """
    h, w = mask.shape
    H, W = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x0 >= x1 or y0 >= y1:
        return None
    m = mask[y0 - y : y1 - y, x0 - x : x1 - x]
    canvas[y0:y1, x0:x1][m] = rgb[y0 - y : y1 - y, x0 - x : x1 - x][m]
    ys, xs = np.nonzero(m)
    if len(ys) == 0:
        return None
    x_min, y_min = int(xs.min()), int(ys.min())
    return x0 + x_min, y0 + y_min, int(xs.max()) - x_min + 1, int(ys.max()) - y_min + 1


@dataclass(frozen=True)
class RenderedObject:
    label: int
    box: tuple[int, int, int, int]  # COCO x, y, w, h in pixels
    area: int  # mask pixels, before any occlusion by later objects
    mask: np.ndarray  # (size, size) bool, where the object was pasted


def render_scene(scene: Scene, size: int) -> tuple[np.ndarray, list[RenderedObject]]:
    canvas = render_background(scene, size)  # pins OpenCV (pin_opencv) for the resizes below
    cuts, objects = cutouts(), []
    for p in scene.objects:
        cut = cuts[p.label]
        rgb = cv2.resize(cut.rgb, (p.width, p.height), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(cut.mask.astype(np.float32), (p.width, p.height))
        mask = alpha >= 0.5
        if p.flip:
            rgb, mask = rgb[:, ::-1], mask[:, ::-1]
        rgb = np.clip(rgb.astype(np.float32) * p.gain + 0.5, 0, 255).astype(np.uint8)
        box = paste(canvas, rgb, mask, p.x, p.y)
        if box is None:
            continue
        full = np.zeros((size, size), bool)
        paste(full, mask, mask, p.x, p.y)
        objects.append(RenderedObject(p.label, box, int(mask.sum()), full))
    return canvas, objects


# ---------------------------------------------------------------------------- splits


def _scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0 if split == TRAIN else 1, index])


def _coco(objects_per_image: Sequence[list[RenderedObject]], size: int) -> dict[str, Any]:
    images, annotations = [], []
    for i, objects in enumerate(objects_per_image, start=1):
        images.append({"id": i, "file_name": f"{i:06d}.png", "width": size, "height": size})
        for o in objects:
            annotations.append({
                "id": len(annotations) + 1, "image_id": i, "category_id": o.label + 1,
                "bbox": list(o.box), "area": o.area, "iscrowd": 0,
            })  # fmt: skip
    categories = [{"id": k + 1, "name": n, "supercategory": "demo"} for k, n in enumerate(CLASSES)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _write(
    name: str, images: Sequence[np.ndarray], coco: dict[str, Any], domain: str,
    params: dict[str, Any], root: Path | None, progress: bool,
) -> PreparedSplit:
    out = split_dir(name, root)
    (out / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(out / "images", ignore_errors=True)
    hashes = {}
    for img, info in tqdm(list(zip(images, coco["images"], strict=True)), desc=name,
                          disable=not progress, leave=False):  # fmt: skip
        write_png(out / "images" / info["file_name"], img)
        hashes[info["file_name"]] = pixel_sha256(img)
    extra = {
        "demo_params": params,
        "packages": {"opencv": cv2.__version__, "scikit-image": skimage.__version__,
                     "numpy": np.__version__},  # fmt: skip
        "image_hash": IMAGE_HASH,
        "image_sha256": hashes,
        "images_sha256": sha256_lines(sorted(hashes.values())),
    }
    return write_split(name, coco, dataset="demo", domain=domain, root=root, extra=extra)


def _render_all(split: str, n: int, seed: int, size: int, progress: bool):
    scenes = [sample_scene(_scene_rng(seed, split, i), size) for i in range(n)]
    rendered = [render_scene(s, size) for s in tqdm(scenes, desc=f"render {split}",
                                                    disable=not progress, leave=False)]  # fmt: skip
    return [r[0] for r in rendered], _coco([r[1] for r in rendered], size)


def build_demo(
    root: Path | None = None,
    *,
    seed: int = 0,
    n_train: int = 400,
    n_test: int = 100,
    n_corrupt: int = 10,
    size: int = 160,
    progress: bool = True,
) -> list[PreparedSplit]:
    """Build (or reuse) the six demo splits, in :data:`SPLITS` order.

    A split whose manifest records the same generator and parameters is kept as it is.
    """
    if size < MAX_HEIGHT or n_train < 1 or n_test < 1 or not 1 <= n_corrupt:
        raise ConfigError(
            f"demo size={size}, n_train={n_train}, n_test={n_test}, n_corrupt={n_corrupt}: "
            f"need size >= {MAX_HEIGHT} and at least one image per split"
        )
    n_corrupt = min(n_corrupt, n_test)
    base = {"generator": GENERATOR, "seed": seed, "size": size}
    train_params = {**base, "n_images": n_train, "scenes": "train"}
    test_params = {**base, "n_images": n_test, "scenes": "test"}

    splits: dict[str, PreparedSplit] = {}
    if (done := load_if_complete(TRAIN, root, {"demo_params": train_params})) is not None:
        splits[TRAIN] = done
    else:
        images, coco = _render_all(TRAIN, n_train, seed, size, progress)
        splits[TRAIN] = _write(TRAIN, images, coco, "photo", train_params, root, progress)

    corrupt_params = {**test_params, "first_n_images": n_corrupt}
    styles: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
        TEST: None, **{name: STYLES[style] for name, style in OOD_SPLITS.items()}
    }
    wanted = {**{name: test_params for name in styles}, CORRUPT_BASE: corrupt_params}
    todo = []
    for name, params in wanted.items():
        if (done := load_if_complete(name, root, {"demo_params": params})) is not None:
            splits[name] = done
        else:
            todo.append(name)
    if todo:
        images, coco = _render_all(TEST, n_test, seed, size, progress)
        for name in todo:
            if name == CORRUPT_BASE:  # the same first scenes as demo_test, byte for byte
                first = _first_images(coco, n_corrupt)
                splits[name] = _write(name, images[:n_corrupt], first, "photo",
                                      corrupt_params, root, progress)
                continue
            style = styles[name]
            styled = images if style is None else [style(im) for im in images]
            domain = "photo" if style is None else OOD_SPLITS[name]
            splits[name] = _write(name, styled, coco, domain, test_params, root, progress)
    return [splits[name] for name in SPLITS]


def _first_images(coco: dict[str, Any], n: int) -> dict[str, Any]:
    """The annotation file of the first ``n`` images (same ids, file names and boxes)."""
    images = coco["images"][:n]
    keep = {im["id"] for im in images}
    return {**coco, "images": images,
            "annotations": [a for a in coco["annotations"] if a["image_id"] in keep]}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-train", type=int, default=400, help="training images (400)")
    parser.add_argument("--n-test", type=int, default=100, help="test scenes per domain (100)")
    parser.add_argument("--n-corrupt", type=int, default=10,
                        help=f"test scenes in {CORRUPT_BASE}, the corruptions' base (10)")
    parser.add_argument("--size", type=int, default=160, help="image side in pixels (160)")
    parser.set_defaults(corruptions="benchmark", severities="3")


@preparer("demo", add_arguments=_add_arguments)
def prepare_demo(args: argparse.Namespace) -> list[PreparedSplit]:
    """Generate the demo splits, then corrupted copies of demo_test10 (the first 10 test
    scenes)."""
    from benchmark.data.corrupt import build_corrupted_splits, corruption_names, parse_severities

    corruptions = corruption_names(args.corruptions)
    severities = parse_severities(args.severities)
    splits = build_demo(
        args.data_root, seed=args.seed, n_train=args.n_train, n_test=args.n_test,
        n_corrupt=args.n_corrupt, size=args.size, progress=args.progress,
    )
    test = splits[SPLITS.index(CORRUPT_BASE)]
    return splits + build_corrupted_splits(
        test, corruptions, severities, root=args.data_root, global_seed=args.seed,
        workers=args.workers, progress=args.progress,
    )
