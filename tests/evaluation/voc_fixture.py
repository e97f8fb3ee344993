"""A VOC-layout detection fixture with the cases where evaluators disagree: scores that tie
after rounding to 3 decimals, boxes whose IoU sits near a threshold after rounding to 1
decimal, difficult boxes, duplicate detections, and a class without ground truth.

Deterministic (seeded); shared by the known-answer test and by the script that computed the
expected values with detectron2's own ``voc_eval`` (see test_voc_detectron2.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

CLASSES = ("aeroplane", "bicycle", "bird", "boat")  # boat: detections but no ground truth


def voc_fixture(seed: int = 7, n_images: int = 40) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(COCO ground truth with VOC integer corners, predictions as the pipeline saves them)."""
    rng = np.random.default_rng(seed)
    images, annotations, predictions = [], [], []
    for i in range(n_images):
        w, h = int(rng.integers(200, 500)), int(rng.integers(200, 400))
        images.append({"id": i + 1, "file_name": f"{i:06d}.jpg", "width": w, "height": h})
        dets = []
        for _ in range(int(rng.integers(0, 5))):
            cat = int(rng.integers(1, 4))
            xmin, ymin = int(rng.integers(1, w - 60)), int(rng.integers(1, h - 60))
            xmax = xmin + int(rng.integers(20, 59))
            ymax = ymin + int(rng.integers(20, 59))
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": cat,
                "bbox": [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1],
                "area": float((xmax - xmin + 1) * (ymax - ymin + 1)), "iscrowd": 0,
                "difficult": int(rng.random() < 0.15),
            })
            x0, y0, x1, y1 = xmin - 1.0, ymin - 1.0, float(xmax), float(ymax)
            for _ in range(int(rng.integers(0, 3))):  # hits, near misses and duplicates
                jitter = rng.normal(0, float(rng.choice([0.4, 2.5, 6.0])), 4)
                dets.append((cat, x0 + jitter[0], y0 + jitter[1], x1 + jitter[2], y1 + jitter[3]))
        for _ in range(int(rng.integers(0, 3))):  # false positives, some of the empty class
            cat = int(rng.integers(1, 5))
            x0, y0 = float(rng.uniform(0, w - 50)), float(rng.uniform(0, h - 50))
            dets.append((cat, x0, y0, x0 + float(rng.uniform(15, 50)),
                         y0 + float(rng.uniform(15, 50))))
        # scores from a coarse grid plus tiny offsets: many ties once rounded to 3 decimals
        scores = rng.choice(np.arange(0.05, 1.0, 0.05), len(dets)) + rng.uniform(0, 4e-4, len(dets))
        for k in np.argsort(-scores, kind="stable"):  # a model emits an image's boxes by score
            cat, x0, y0, x1, y1 = dets[k]
            predictions.append({
                "image_id": i + 1, "category_id": cat,
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "score": round(float(scores[k]), 5),
            })
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]
    return {"images": images, "annotations": annotations, "categories": categories}, predictions
