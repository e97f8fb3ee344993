"""Throughput of the corrupted-split builder against a bare ``imagecorruptions.corrupt`` loop.

    python perf/bench_corrupt.py [--images 6] [--size 480x640] [--severities 3]
                                       [--corruptions benchmark] [--workers 2] [--repeat 3]

Prints, on the same COCO-sized images (JPEG sources, like COCO) in the same run:
* the per-core cost of ``build_corrupted_splits(workers=1)`` (decode, seeded corruption, PNG
  encode, pixel hash, atomic write) against bare loops calling ``imagecorruptions.corrupt``:
  on images already in memory, and as the minimal read-corrupt-write-PNG script — the
  overhead ratios (target <= 10 %);
* the speed-up from 1 to N worker processes, raw and without the one-off pool start (target
  >= 1.8x for 2), next to the ceiling the machine allows right now (N bare loops side by side),
  and a projection for COCO-C (5,000 images x 15 corruptions x 5 severities).
Both sides run OpenCV single-threaded so the comparison is per core.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import cv2
import imagecorruptions
import numpy as np
import skimage.data
from PIL import Image

from benchmark.data import encode_png, read_rgb
from benchmark.data.corrupt import (
    build_corrupted_splits,
    corrupt_image,
    corruption_names,
    corruption_seed,
    parse_severities,
)
from benchmark.data.split import PreparedSplit, write_split

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
COCO_C_IMAGES = 5000 * 15 * 5


def make_source(root: Path, n: int, height: int, width: int, name: str = "bench",
                classes: int = 1, boxes: int = 0) -> PreparedSplit:  # fmt: skip
    """``n`` photo-like JPEGs of the given size (scikit-image photos, cropped and flipped),
    with ``boxes`` seeded random boxes of ``classes`` categories each (for scoring)."""
    images = []
    annotations = []
    rng = np.random.default_rng(0)
    for i in range(n):
        photo = getattr(skimage.data, PHOTOS[i % len(PHOTOS)])()
        scale = max(height / photo.shape[0], width / photo.shape[1])
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        y0, x0 = (photo.shape[0] - height) // 2, (photo.shape[1] - width) // 2
        crop = photo[y0 : y0 + height, x0 : x0 + width]
        crop = crop[:, ::-1] if (i // len(PHOTOS)) % 2 else crop
        path = root / name / "images" / f"{i + 1:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(crop)).save(path, quality=90)
        images.append({"id": i + 1, "file_name": path.name, "width": width, "height": height})
        for _ in range(boxes):
            w, h = rng.uniform(16, width / 2), rng.uniform(16, height / 2)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": int(rng.integers(1, classes + 1)),
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    categories = [{"id": k + 1, "name": f"thing{k + 1}" if classes > 1 else "thing"}
                  for k in range(classes)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    return write_split(name, coco, dataset="bench", domain="photo", root=root)


def bare_loop(
    source: PreparedSplit, corruptions: list[str], severities: list[int], out: Path | None = None
) -> float:
    """Seconds for a bare loop over ``imagecorruptions.corrupt``.

    ``out=None``: the corruption alone on decoded images (the lower bound). Otherwise the
    minimal script that materialises the set: decode, seed, corrupt, encode the PNG the same
    way the suite does, write the file.
    """
    arrays = [(img["id"], source.image_path(img["file_name"]), None if out else
               read_rgb(source.image_path(img["file_name"])))
              for img in source.coco["images"]]  # fmt: skip
    total = 0.0
    for c in corruptions:
        for s in severities:
            for image_id, path, array in arrays:
                seed = corruption_seed(0, image_id, c, s)
                kwargs = {"seed": seed} if c in ("impulse_noise", "glass_blur") else {}
                t = time.perf_counter()
                image = read_rgb(path) if array is None else array
                np.random.seed(seed)
                result = imagecorruptions.corrupt(image, s, c, **kwargs)
                if out is not None:
                    (out / f"{c}.{s}.{image_id}.png").write_bytes(encode_png(result))
                total += time.perf_counter() - t
    return total


def _warm_worker() -> None:
    cv2.setNumThreads(1)
    corrupt_image(np.zeros((32, 32, 3), np.uint8), "glass_blur", 1, seed=0)  # numba compile


def _bare_chunk(task: tuple[list[tuple[int, str]], list[str], list[int]]) -> float:
    items, corruptions, severities = task
    t = time.perf_counter()
    for image_id, path in items:
        image = read_rgb(path)
        for c in corruptions:
            for s in severities:
                seed = corruption_seed(0, image_id, c, s)
                kwargs = {"seed": seed} if c in ("impulse_noise", "glass_blur") else {}
                np.random.seed(seed)
                imagecorruptions.corrupt(image, s, c, **kwargs)
    return time.perf_counter() - t


def machine_ceiling(source: PreparedSplit, corruptions: list[str], severities: list[int],
                    workers: int) -> float:  # fmt: skip
    """Speed-up of ``workers`` bare corrupt() loops running side by side in warmed-up processes
    over one loop doing all the work: what this machine allows right now."""
    items = [(img["id"], str(source.image_path(img["file_name"])))
             for img in source.coco["images"]]  # fmt: skip
    one = _bare_chunk((items, corruptions, severities))
    chunks = [(items[i::workers], corruptions, severities) for i in range(workers)]
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_warm_worker) as pool:
        pool.map(abs, range(workers))  # wait until every worker is up
        return one / max(pool.map(_bare_chunk, chunks, chunksize=1))


def timed_build(source: PreparedSplit, root: Path, corruptions: list[str], severities: list[int],
                workers: int) -> float:  # fmt: skip
    t = time.perf_counter()
    build_corrupted_splits(source, corruptions, severities, root=root, workers=workers,
                           progress=False)  # fmt: skip
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--size", default="480x640", help="HxW (COCO images are ~480x640)")
    parser.add_argument("--corruptions", default="benchmark")
    parser.add_argument("--severities", default="3")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs; minimum kept")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    corruptions, severities = corruption_names(args.corruptions), parse_severities(args.severities)
    n_jobs = args.images * len(corruptions) * len(severities)
    cv2.setNumThreads(1)
    corrupt_image(np.zeros((32, 32, 3), np.uint8), "glass_blur", 1, seed=0)  # numba compile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = make_source(root, args.images, height, width)
        print(f"{args.images} images {height}x{width}, {len(corruptions)} corruptions x "
              f"severities {severities} = {n_jobs} corrupted images; "
              f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip

        bare = script = suite = parallel = startup = float("inf")
        tiny = make_source(root, 1, 32, 32, name="tiny")
        for r in range(args.repeat):  # interleaved; the minimum is the least disturbed run
            bare = min(bare, bare_loop(source, corruptions, severities))
            out = root / f"script{r}"
            out.mkdir()
            script = min(script, bare_loop(source, corruptions, severities, out=out))
            suite = min(suite, timed_build(source, root / f"w1.{r}", corruptions, severities, 1))
            # Fixed cost: pool start, numba compile in each worker, per-split bookkeeping.
            startup = min(startup, timed_build(tiny, root / f"s.{r}", corruptions, severities,
                                               args.workers))  # fmt: skip
            parallel = min(parallel, timed_build(source, root / f"wn.{r}", corruptions, severities,
                                                 args.workers))  # fmt: skip
        rows = (("bare corrupt() loop", bare), ("bare read+corrupt+PNG", script),
                ("suite builder", suite))  # fmt: skip
        for label, seconds in rows:
            print(f"per core: {label:22s} {n_jobs / seconds:6.2f} img/s"
                  f" ({seconds / n_jobs * 1e3:.0f} ms/img)")  # fmt: skip
        print(f"overhead: {100 * (suite / bare - 1):+.1f} % over corrupt() alone (decode, PNG"
              f" encode, hash, write); {100 * (suite / script - 1):+.1f} % over the bare"
              f" read+corrupt+PNG script")  # fmt: skip
        steady = max(parallel - startup, 1e-9)
        print(f"{args.workers} workers: {parallel:.1f} s vs {suite:.1f} s on 1 worker:"
              f" {suite / parallel:.2f}x; {suite / steady:.2f}x without the fixed cost of pool"
              f" start, numba compile and per-split bookkeeping ({startup:.1f} s)")  # fmt: skip
        ceiling = max(machine_ceiling(source, corruptions, severities, args.workers)
                      for _ in range(args.repeat))  # fmt: skip
        print(f"machine ceiling now: {args.workers} bare corrupt() loops side by side run"
              f" {ceiling:.2f}x one loop (load average {os.getloadavg()[0]:.2f}: other processes"
              f" share these cores)")  # fmt: skip

        per_image = suite / n_jobs
        cpu_hours = COCO_C_IMAGES * per_image / 3600
        wall = COCO_C_IMAGES * steady / n_jobs / 3600
        print(f"COCO-C projection ({COCO_C_IMAGES:,} images, mean cost at severities "
              f"{severities}): {cpu_hours:.1f} core-hours; {wall:.1f} h with {args.workers}"
              f" workers on this machine")  # fmt: skip


if __name__ == "__main__":
    main()
