"""Benchmark: converting an annotation set the size of COCO val2017 (5,000 images, ~36k boxes).

    python perf/bench_prepare.py [--formats voc,coco,bdd100k,cityscapes]
                                       [--images 5000] [--boxes 36000] [--workdir DIR]

For each native format it generates a synthetic raw dataset of that size (annotation files in
the real layout, plus a tiny placeholder file per image: converters check every image exists
but never decode pixels), then runs the converter in a fresh subprocess and reports wall time
and peak memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that subprocess).
Budget: < 30 s and < 2 GB per format; exits 1 when a format exceeds it.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TIME_BUDGET_S = 30.0
MEMORY_BUDGET_MB = 2048.0
FORMATS = ("voc", "coco", "bdd100k", "cityscapes")
PLACEHOLDER = b"\xff\xd8\xff\xd9"  # never decoded: existence is what the converters check


def _boxes_per_image(n_images: int, n_boxes: int, rng: random.Random) -> list[int]:
    counts = [n_boxes // n_images] * n_images
    for i in rng.sample(range(n_images), n_boxes - sum(counts)):
        counts[i] += 1
    for _ in range(n_images):  # shuffle boxes between images, keeping the total
        a, b = rng.randrange(n_images), rng.randrange(n_images)
        if counts[a] > 1:
            counts[a] -= 1
            counts[b] += 1
    return counts


def _box(rng: random.Random, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0 = rng.randrange(1, w - 20), rng.randrange(1, h - 20)
    return x0, y0, rng.randrange(x0 + 2, min(w, x0 + 300)), rng.randrange(y0 + 2, min(h, y0 + 300))


def gen_voc(raw: Path, counts: list[int], rng: random.Random) -> Path:
    from benchmark.data.sources.common import VOC_CLASSES

    ds = raw / "VOCdevkit" / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (ds / sub).mkdir(parents=True)
    ids = [f"{i:06d}" for i in range(1, len(counts) + 1)]
    for image_id, n in zip(ids, counts, strict=True):
        w, h = 500, 375
        objs = "".join(
            "<object><name>{}</name><pose>Unspecified</pose><truncated>0</truncated>"
            "<difficult>{}</difficult><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax>"
            "<ymax>{}</ymax></bndbox></object>\n".format(
                rng.choice(VOC_CLASSES), int(rng.random() < 0.1), *_box(rng, w, h))
            for _ in range(n))
        (ds / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
            f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
            f"<segmented>0</segmented>\n{objs}</annotation>\n")
        (ds / "JPEGImages" / f"{image_id}.jpg").write_bytes(PLACEHOLDER)
    (ds / "ImageSets" / "Main" / "test.txt").write_text("".join(i + "\n" for i in ids))
    return raw / "VOCdevkit"


def gen_coco(raw: Path, counts: list[int], rng: random.Random) -> Path:
    root = raw / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    cat_ids = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
    from benchmark.data.sources.common import COCO_CLASSES

    images, anns = [], []
    for i, n in enumerate(counts, 1):
        w, h = 640, 480
        name = f"{i:012d}.jpg"
        images.append({"id": i, "file_name": name, "width": w, "height": h, "license": 1,
                       "coco_url": f"http://example/{name}", "date_captured": "2013-11-14"})
        (root / "val2017" / name).write_bytes(PLACEHOLDER)
        for _ in range(n):
            x0, y0, x1, y1 = _box(rng, w, h)
            seg = [float(v) for _ in range(12) for v in (rng.uniform(x0, x1), rng.uniform(y0, y1))]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": rng.choice(cat_ids),
                         "bbox": [x0 + 0.37, y0 + 0.81, x1 - x0 - 0.5, y1 - y0 - 0.25],
                         "area": (x1 - x0) * (y1 - y0) * 0.6, "iscrowd": int(rng.random() < 0.01),
                         "segmentation": [seg]})
    cats = [{"id": cid, "name": n, "supercategory": "x"}
            for cid, n in zip(cat_ids, COCO_CLASSES, strict=True)]
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({"info": {}, "licenses": [], "images": images, "annotations": anns,
                    "categories": cats}))
    return root


def gen_bdd100k(raw: Path, counts: list[int], rng: random.Random) -> Path:
    root = raw / "bdd100k"
    img_dir = root / "images" / "100k" / "val"
    img_dir.mkdir(parents=True)
    (root / "labels" / "det_20").mkdir(parents=True)
    cats = ["pedestrian", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
            "traffic light", "traffic sign"]
    frames = []
    for i, n in enumerate(counts):
        name = f"{i:08x}-{i:08x}.jpg"
        (img_dir / name).write_bytes(PLACEHOLDER)
        labels = []
        for j in range(n):
            x0, y0, x1, y1 = _box(rng, 1280, 720)
            labels.append({"id": str(j), "category": rng.choice(cats),
                           "attributes": {"occluded": False, "truncated": False},
                           "box2d": {"x1": x0 + 0.5, "y1": y0 + 0.5, "x2": x1 + 0.5,
                                     "y2": y1 + 0.5}})
        frames.append({"name": name, "attributes": {"weather": "clear"}, "timestamp": 10000,
                       "labels": labels})
    (root / "labels" / "det_20" / "det_val.json").write_text(json.dumps(frames))
    return root


def _poly(rng: random.Random, x0: int, y0: int, x1: int, y1: int, n: int) -> list[list[int]]:
    """A star-ish polygon of n vertices inside the box, in angular order."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    pts = []
    for k in range(n):
        a = 2 * math.pi * k / n
        r = rng.uniform(0.6, 1.0)
        pts.append([int(cx + r * (x1 - x0) / 2 * math.cos(a)),
                    int(cy + r * (y1 - y0) / 2 * math.sin(a))])
    return pts


def gen_cityscapes(raw: Path, counts: list[int], rng: random.Random) -> Path:
    root = raw / "cityscapes"
    w, h = 2048, 1024
    things = ["person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
              "cargroup", "persongroup"]
    stuff = ["road", "sidewalk", "building", "vegetation", "sky", "pole", "traffic sign"]
    for i, n in enumerate(counts):
        city = f"city{i % 10}"
        stem = f"{city}_{i:06d}_000019"
        objects = [{"label": "out of roi", "polygon": [[0, 0], [w, 0], [w, 10], [0, 10]]}]
        objects += [{"label": s, "polygon": _poly(rng, *_box(rng, w, h), 30)} for s in stuff[:4]]
        objects += [{"label": "sky", "polygon": [[0, 0], [w - 1, 0], [w - 1, 300], [0, 300]]}]
        objects += [{"label": "road", "polygon": [[0, 600], [w - 1, 600], [w - 1, h - 1],
                                                  [0, h - 1]]}]
        for _ in range(n):  # things interleaved with small stuff (poles, signs) that occlude
            x0, y0 = rng.randrange(0, w - 300), rng.randrange(300, h - 200)
            objects.append({"label": rng.choice(things),
                            "polygon": _poly(rng, x0, y0, x0 + rng.randrange(20, 300),
                                             y0 + rng.randrange(20, 200), 40)})
            if rng.random() < 0.5:
                objects.append({"label": rng.choice(stuff[5:]),
                                "polygon": _poly(rng, *_box(rng, w, h), 8)})
        objects.append({"label": "ego vehicle", "polygon": [[0, h - 60], [w - 1, h - 60],
                                                            [w - 1, h - 1], [0, h - 1]]})
        gt = root / "gtFine" / "val" / city / f"{stem}_gtFine_polygons.json"
        gt.parent.mkdir(parents=True, exist_ok=True)
        gt.write_text(json.dumps({"imgHeight": h, "imgWidth": w, "objects": objects}))
        img = root / "leftImg8bit" / "val" / city / f"{stem}_leftImg8bit.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        img.write_bytes(PLACEHOLDER)
    return root


GENERATORS = {"voc": gen_voc, "coco": gen_coco, "bdd100k": gen_bdd100k,
              "cityscapes": gen_cityscapes}


def run_one(fmt: str, raw: Path, out: Path) -> dict:
    """Runs inside the measuring subprocess."""
    from benchmark.data.sources import (
        Options,
        prepare_bdd100k,
        prepare_cityscapes,
        prepare_coco,
        prepare_voc,
    )

    opts = Options(root=out, allow_partial=True, log=lambda s: None)  # 5000 != published count
    t0 = time.perf_counter()
    if fmt == "voc":
        splits = prepare_voc(raw, opts, splits=["voc07_test"])
    elif fmt == "coco":
        splits = prepare_coco(raw, opts, splits=["val2017"])
    elif fmt == "bdd100k":
        splits = prepare_bdd100k(raw, opts)
    else:
        splits = prepare_cityscapes(raw, opts, splits=["val"])
    seconds = time.perf_counter() - t0
    m = splits[0].manifest
    return {"format": fmt, "images": m["num_images"], "boxes": m["num_boxes"],
            "seconds": seconds,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--boxes", type=int, default=36000)
    ap.add_argument("--workdir", type=Path, default=None, help="keep generated data here")
    ap.add_argument("--one", nargs=3, metavar=("FORMAT", "RAW", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        fmt, raw, out = args.one
        print(json.dumps(run_one(fmt, Path(raw), Path(out))))
        return 0
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_prepare_"))
    rng = random.Random(0)
    counts = _boxes_per_image(args.images, args.boxes, rng)
    rows, failed = [], False
    try:
        for fmt in formats:
            t0 = time.perf_counter()
            raw = GENERATORS[fmt](work / "raw" / fmt, counts, random.Random(fmt))
            gen_s = time.perf_counter() - t0
            proc = subprocess.run(
                [sys.executable, __file__, "--one", fmt, str(raw), str(work / "data" / fmt)],
                capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["generate_s"] = gen_s
            ok = row["seconds"] < TIME_BUDGET_S and row["maxrss_mb"] < MEMORY_BUDGET_MB
            failed |= not ok
            row["ok"] = ok
            rows.append(row)
            print(f"{fmt:>10}: {row['images']} images, {row['boxes']} boxes: "
                  f"{row['seconds']:.2f} s, peak RSS {row['maxrss_mb']:.0f} MB "
                  f"({'ok' if ok else 'OVER BUDGET'}; generation {gen_s:.1f} s)", flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"budget: < {TIME_BUDGET_S:.0f} s and < {MEMORY_BUDGET_MB:.0f} MB per format")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
