"""benchmark.evaluation.matching: AP from precomputed per-image matches, against pycocotools."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.evaluation import matching as mt
from benchmark.evaluation.coco import coco_summary
from benchmark.report import bootstrap as bs


def _random_case(seed: int, n_img: int = 60, n_cls: int = 4, dets: int = 25,
                 crowd: float = 0.04, difficult: float = 0.05, tie_every: int = 0
                 ) -> tuple[dict, list[dict]]:
    """Random GT (with crowd and VOC-difficult boxes) and predictions near / away from it."""
    rng = np.random.default_rng(seed)
    images = [{"id": 10 + 3 * i, "file_name": f"{i}.jpg", "width": 320, "height": 240}
              for i in range(n_img)]
    cats = [{"id": c + 1, "name": f"c{c}"} for c in range(n_cls)]
    anns: list[dict] = []
    preds: list[dict] = []
    for img in images:
        k = int(rng.poisson(3))
        cls = rng.integers(1, n_cls + 1, k)
        xy = rng.uniform(0, 200, (k, 2))
        wh = rng.uniform(8, 100, (k, 2))
        for j in range(k):
            a = {"id": len(anns) + 1, "image_id": img["id"], "category_id": int(cls[j]),
                 "bbox": [*map(float, xy[j]), *map(float, wh[j])],
                 "area": float(wh[j].prod()), "iscrowd": int(rng.random() < crowd)}
            if rng.random() < difficult:
                a["difficult"] = 1
            anns.append(a)
        for _ in range(dets):
            if k and rng.random() < 0.6:
                g = int(rng.integers(k))
                box = np.r_[xy[g], wh[g]] + rng.normal(0, 6, 4)
                c = int(cls[g]) if rng.random() < 0.85 else int(rng.integers(1, n_cls + 1))
            else:
                box = np.r_[rng.uniform(0, 200, 2), rng.uniform(8, 100, 2)]
                c = int(rng.integers(1, n_cls + 1))
            box[2:] = np.abs(box[2:]) + 1
            preds.append({"image_id": img["id"], "category_id": c,
                          "bbox": [float(v) for v in box], "score": float(rng.random())})
    if tie_every:
        for p in preds[::tie_every]:
            p["score"] = round(p["score"], 1)
    return {"images": images, "annotations": anns, "categories": cats}, preds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_from_matches_equals_cocoeval(seed: int) -> None:
    gt, preds = _random_case(seed, tie_every=3)
    mine = mt.weighted_ap(mt.match_predictions(gt, preds))
    ref = coco_summary(gt, preds)
    for k in ("AP", "AP50", "AP75"):
        assert mine[k] == pytest.approx(ref[k], abs=1e-12), k


def test_more_than_100_detections_per_image_and_class_are_cut_like_cocoeval() -> None:
    gt, preds = _random_case(5, n_img=4, n_cls=1, dets=160)
    assert mt.weighted_ap(mt.match_predictions(gt, preds))["AP"] == pytest.approx(
        coco_summary(gt, preds)["AP"], abs=1e-12)


def test_resampled_ap_equals_cocoeval_on_the_duplicated_images() -> None:
    """A weight vector is the image multiset: AP must equal COCOeval on real duplicates."""
    gt, preds = _random_case(3)
    table = mt.match_predictions(gt, preds)
    weights = bs.draw_counts(table.image_ids, 1, seed=7)[0].astype(int)
    assert weights.max() >= 2 and (weights == 0).any()
    images, anns, dup = [], [], []
    by_img_gt: dict[int, list] = {}
    by_img_dt: dict[int, list] = {}
    for a in gt["annotations"]:
        by_img_gt.setdefault(a["image_id"], []).append(a)
    for p in preds:
        by_img_dt.setdefault(p["image_id"], []).append(p)
    for img_id, w in zip(table.image_ids, weights, strict=True):
        for _ in range(w):
            new = len(images) + 1
            images.append({"id": new, "file_name": "x.jpg", "width": 320, "height": 240})
            for a in by_img_gt.get(img_id, []):
                anns.append({**a, "id": len(anns) + 1, "image_id": new})
            dup += [{**p, "image_id": new} for p in by_img_dt.get(img_id, [])]
    ref = coco_summary({"images": images, "annotations": anns, "categories": gt["categories"]}, dup)
    mine = mt.weighted_ap(table, weights)
    for k in ("AP", "AP50", "AP75"):
        assert mine[k] == pytest.approx(ref[k], abs=1e-12), k


def _box_case() -> tuple[dict, list[dict]]:
    """One class, GT in two images; ranked detections TP, FP, TP (exact boxes: IoU 1)."""
    gt = {"images": [{"id": 1, "file_name": "a", "width": 100, "height": 100},
                     {"id": 2, "file_name": "b", "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "thing"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20],
                           "area": 400, "iscrowd": 0},
                          {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 50, 30, 30],
                           "area": 900, "iscrowd": 0}]}
    preds = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
             {"image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.8},
             {"image_id": 2, "category_id": 1, "bbox": [50, 50, 30, 30], "score": 0.7}]
    return gt, preds


def test_known_answer_by_hand() -> None:
    # precision/recall: (1, 1/2), (1/2, 1/2), (2/3, 1); interpolated precision is 1 for
    # recall ≤ 0.5 (51 of the 101 points) and 2/3 above (50 points), at every IoU (exact boxes)
    gt, preds = _box_case()
    table = mt.match_predictions(gt, preds)
    expected = (51 * 1.0 + 50 * 2 / 3) / 101
    ap = mt.weighted_ap(table)
    assert ap["AP"] == pytest.approx(expected, abs=1e-12)
    assert ap["AP50"] == pytest.approx(expected, abs=1e-12)
    # image 2 counted twice: ranking TP(w1), FP(w2), TP(w2); npos 3:
    # (1, 1/3), (1/3, 1/3), (3/5, 1) → 34 points at 1, 67 at 3/5
    w2 = mt.weighted_ap(table, np.array([1.0, 2.0]))
    assert w2["AP"] == pytest.approx((34 + 67 * 3 / 5) / 101, abs=1e-12)
    # only image 1: a perfect detector
    assert mt.weighted_ap(table, np.array([1.0, 0.0]))["AP"] == pytest.approx(1.0)
    # no ground truth left in the resample: AP undefined
    assert math.isnan(mt.weighted_ap(table, np.array([0.0, 0.0]))["AP"])


def test_recall_reach_is_exact_at_the_threshold_values() -> None:
    rec = np.concatenate([mt.RECALL_THRESHOLDS, np.nextafter(mt.RECALL_THRESHOLDS, -1),
                          np.random.default_rng(0).random(1000), [0.0, 1.0]])
    rec = np.clip(rec, 0, 1)
    expected = np.searchsorted(mt.RECALL_THRESHOLDS, rec, side="right")
    assert np.array_equal(mt._recall_reach(rec), expected)


def test_no_predictions_gives_zero_ap() -> None:
    gt, _ = _box_case()
    table = mt.match_predictions(gt, [])
    assert mt.weighted_ap(table)["AP"] == 0.0
    assert coco_summary(gt, [])["AP"] == 0.0


def test_unknown_ids_are_rejected() -> None:
    gt, preds = _box_case()
    with pytest.raises(ValueError, match="unknown image_id 99"):
        mt.match_predictions(gt, [dict(preds[0], image_id=99)])
    with pytest.raises(ValueError, match="unknown category_id 7"):
        mt.match_predictions(gt, [dict(preds[0], category_id=7)])
