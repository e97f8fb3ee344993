"""Time ``coco_summary`` on a COCO-val-sized synthetic case; compare with faster-coco-eval.

    .venv/bin/python perf/bench_evaluate.py [--images 5000] [--dets-per-image 100]

The case mimics COCO val2017: 5,000 images of 640×480, 80 classes, ~7.3 boxes per image
(~36k), sizes spread over small/medium/large, and ~100 detections per image (jittered copies
of GT boxes plus background boxes, random scores). faster-coco-eval is pinned by the project
and selectable as ``coco_summary(..., backend="faster_coco_eval")`` /
``python -m benchmark.evaluation --backend faster_coco_eval``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.evaluation.coco import COCO_KEYS  # noqa: E402
from benchmark.evaluation.coco import coco_summary as bench_coco_summary  # noqa: E402
from benchmark.evaluation.loading import (  # noqa: E402
    load_gt,
    load_predictions,
    validate_predictions,
)

W, H, K = 640, 480, 80


def make_case(n_images: int, dets_per_image: int, seed: int) -> tuple[dict, list[dict]]:
    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    for img_id in range(1, n_images + 1):
        images.append({"id": img_id, "file_name": f"{img_id:012d}.jpg", "width": W, "height": H})
        n_gt = int(rng.poisson(7.3))
        side = np.exp(rng.uniform(np.log(8), np.log(400), size=(n_gt, 2)))  # small..large
        w, h = np.minimum(side[:, 0], W - 1), np.minimum(side[:, 1], H - 1)
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        cats = rng.integers(1, K + 1, size=n_gt)
        for j in range(n_gt):
            box = [float(x[j]), float(y[j]), float(w[j]), float(h[j])]
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": int(cats[j]),
                         "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
        # Up to 3 jittered copies per GT box (some with the wrong class), rest background.
        n_near = min(dets_per_image, 3 * n_gt)
        src = rng.integers(0, max(n_gt, 1), size=n_near)
        for j in src[: n_near if n_gt else 0]:
            jit = rng.normal(0, 0.1, size=4) * [w[j], h[j], w[j], h[j]]
            bw, bh = max(w[j] + jit[2], 1.0), max(h[j] + jit[3], 1.0)
            cat = int(cats[j]) if rng.random() < 0.8 else int(rng.integers(1, K + 1))
            dets.append({"image_id": img_id, "category_id": cat,
                         "bbox": [float(x[j] + jit[0]), float(y[j] + jit[1]), float(bw), float(bh)],
                         "score": float(rng.uniform(0.3, 1.0))})
        for _ in range(dets_per_image - (n_near if n_gt else 0)):
            bw, bh = np.exp(rng.uniform(np.log(8), np.log(300), size=2))
            dets.append({"image_id": img_id, "category_id": int(rng.integers(1, K + 1)),
                         "bbox": [float(rng.uniform(0, W - bw)), float(rng.uniform(0, H - bh)),
                                  float(bw), float(bh)],
                         "score": float(rng.uniform(0.0, 0.6))})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": k, "name": f"class{k}"} for k in range(1, K + 1)]}
    return gt, dets


def faster_summary(gt: dict[str, Any], dets: list[dict]) -> list[float] | None:
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError:
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(json.loads(json.dumps(gt)))
        coco_dt = coco_gt.loadRes([dict(d) for d in dets])
        ev = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=lambda *a: None)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats[:12]]


def raw_pycocotools(gt: dict[str, Any], dets: list[dict]) -> list[float]:
    """Plain pycocotools, no validation or copies: the floor for ``coco_summary``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = json.loads(json.dumps(gt))
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes([dict(d) for d in dets]), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(v) for v in ev.stats]


class Timing:
    """Wall and CPU seconds: the machine may be shared, CPU time is the steadier figure."""

    def __init__(self, wall: float, cpu: float) -> None:
        self.wall, self.cpu = wall, cpu

    def __str__(self) -> str:
        return f"{self.wall:.1f} s wall / {self.cpu:.1f} s CPU"


def timed(fn, *args):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, Timing(time.perf_counter() - t0, time.process_time() - c0)


def known_answer_diff() -> float | None:
    """Max |faster-coco-eval − pycocotools| on the shared known-answer fixture, if present."""
    base = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "coco_known_answer"
    if not base.is_dir():
        return None
    gt = json.loads((base / "instances_val2014_100.json").read_text())
    dets = json.loads((base / "instances_val2014_fakebbox100_results.json").read_text())
    fast = faster_summary(gt, dets)
    if fast is None:
        return None
    ref = bench_coco_summary(gt, dets)
    return max(abs(a - ref[k]) for a, k in zip(fast, COCO_KEYS, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--dets-per-image", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--raw", action="store_true", help="also time plain pycocotools")
    args = ap.parse_args()

    (gt, dets), t_gen = timed(make_case, args.images, args.dets_per_image, args.seed)
    print(f"case: {len(gt['images'])} images, {len(gt['annotations'])} GT boxes, "
          f"{len(dets)} detections (generated in {t_gen.wall:.1f} s)")

    _, t_val = timed(lambda: validate_predictions(load_predictions(dets)[0], load_gt(gt)[0]))
    ours, t_ours = timed(bench_coco_summary, gt, dets)
    print(f"coco_summary (pycocotools): {t_ours}  (validation {t_val.cpu:.2f} s CPU of it)")
    print("  " + " ".join(f"{k}={ours[k]:.4f}" for k in COCO_KEYS))
    if args.raw:
        raw, t_raw = timed(raw_pycocotools, gt, dets)
        assert raw == [ours[k] for k in COCO_KEYS], "coco_summary differs from raw pycocotools"
        print(f"raw pycocotools (no validation/copies): {t_raw}")

    fast, t_fast = timed(faster_summary, gt, dets)
    if fast is None:
        print("faster-coco-eval not installed: no comparison")
        return
    diff = max(abs(a - ours[k]) for a, k in zip(fast, COCO_KEYS, strict=True))
    print(f"faster-coco-eval: {t_fast}  -> coco_summary / faster = "
          f"{t_ours.wall / t_fast.wall:.1f}x wall, {t_ours.cpu / t_fast.cpu:.1f}x CPU")
    print(f"  max |difference| over the 12 numbers: {diff:.2e}")
    kad = known_answer_diff()
    if kad is not None:
        print(f"  on the known-answer fixture: max |difference| {kad:.2e}")


if __name__ == "__main__":
    main()
