"""VOC-style AP: hand-computed cases and a straightforward per-detection loop as reference."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.errors import DataError
from benchmark.evaluation import evaluate_predictions
from benchmark.evaluation.voc import IOU_THRESHOLDS, to_voc_corners, voc_ap, voc_iou, voc_summary


def _fixtures() -> Path:
    """tests/fixtures: the COCO known-answer files with their provenance."""
    return Path(__file__).resolve().parents[1] / "fixtures"


def _img(i: int) -> dict:
    return {"id": i, "file_name": f"{i}.jpg", "width": 100, "height": 100}


def _ann(i: int, img: int, cat: int, bbox: list[float], difficult: int = 0) -> dict:
    return {
        "id": i,
        "image_id": img,
        "category_id": cat,
        "bbox": bbox,
        "area": bbox[2] * bbox[3],
        "iscrowd": 0,
        "difficult": difficult,
    }


def _det(img: int, cat: int, bbox: list[float], score: float) -> dict:
    return {"image_id": img, "category_id": cat, "bbox": bbox, "score": score}


# cat: 3 GT (A, B in image 1; C in image 2) and 4 detections, by score:
#   d1 0.9 = A exactly (IoU 1)            -> TP at every threshold
#   d2 0.8 on empty background            -> FP
#   d3 0.7 on C with IoU 72/100 = 0.72     -> TP for t <= 0.70, FP for t >= 0.75
#   d4 0.6 = A again (duplicate)          -> FP
# t <= 0.70: cum TP 1,1,2,2  FP 0,1,1,2  rec 1/3,1/3,2/3,2/3  prec 1,1/2,2/3,1/2
#   11-point: t = 0, .1, .2, .3 -> 1; t = .4, .5, .6 -> 2/3; t >= .7 -> 0  => 6/11
#   area: envelope 1 on (0,1/3], 2/3 on (1/3,2/3], 0 after  => 1/3 + 2/9 = 5/9
# t >= 0.75: cum TP 1,1,1,1  FP 0,1,2,3  rec 1/3 (x4)  prec 1,1/2,1/3,1/4
#   11-point: 4/11;  area: 1/3
# => AP@[.5:.95] 07: (5*6/11 + 5*4/11)/10 = 5/11;  area: (5*5/9 + 5*1/3)/10 = 4/9
#
# dog: D (image 1) normal, E (image 2) and F (image 1) difficult. Detections: e1 0.95 and
#   e2 0.9 both on E (ignored, even the duplicate), e3 0.5 on D (TP). npos = 1, F not missed.
#   cum TP 0,0,1 FP 0,0,0 -> rec 0,0,1 prec 0,0,1 -> AP 1 for both metrics, all thresholds.
#
# cow: no ground truth, one detection -> skipped (None), not in the means.
CAT, DOG, COW = 1, 2, 3
GT = {
    "images": [_img(1), _img(2)],
    "categories": [
        {"id": CAT, "name": "cat"},
        {"id": DOG, "name": "dog"},
        {"id": COW, "name": "cow"},
    ],
    "annotations": [
        _ann(1, 1, CAT, [0, 0, 10, 10]),  # A
        _ann(2, 1, CAT, [50, 50, 10, 10]),  # B
        _ann(3, 2, CAT, [0, 0, 10, 10]),  # C
        _ann(4, 1, DOG, [20, 20, 20, 20]),  # D
        _ann(5, 2, DOG, [40, 40, 20, 20], difficult=1),  # E
        _ann(6, 1, DOG, [70, 70, 10, 10], difficult=1),  # F
    ],
}
DETS = [
    _det(1, CAT, [0, 0, 10, 10], 0.9),
    _det(1, CAT, [30, 30, 10, 10], 0.8),
    _det(2, CAT, [0, 0, 10, 7.2], 0.7),
    _det(1, CAT, [0, 0, 10, 10], 0.6),
    _det(2, DOG, [40, 40, 20, 20], 0.95),
    _det(2, DOG, [40, 40, 20, 20], 0.9),
    _det(1, DOG, [20, 20, 20, 20], 0.5),
    _det(1, COW, [0, 0, 5, 5], 0.99),
]


def test_hand_computed_11_point() -> None:
    r = voc_summary(GT, DETS, use_07_metric=True)
    assert r["per_class"]["cat"] == pytest.approx(5 / 11, abs=1e-12)
    assert r["per_class_ap50"]["cat"] == pytest.approx(6 / 11, abs=1e-12)
    assert r["per_class"]["dog"] == pytest.approx(1.0, abs=1e-12)
    assert r["per_class"]["cow"] is None and r["per_class_ap50"]["cow"] is None
    assert r["AP"] == pytest.approx((5 / 11 + 1) / 2, abs=1e-12)
    assert r["AP50"] == pytest.approx((6 / 11 + 1) / 2, abs=1e-12)
    assert r["AP75"] == pytest.approx((4 / 11 + 1) / 2, abs=1e-12)


def test_hand_computed_area() -> None:
    r = voc_summary(GT, DETS, use_07_metric=False)
    assert r["per_class"]["cat"] == pytest.approx(4 / 9, abs=1e-12)
    assert r["per_class_ap50"]["cat"] == pytest.approx(5 / 9, abs=1e-12)
    assert r["per_class"]["dog"] == pytest.approx(1.0, abs=1e-12)
    assert r["AP"] == pytest.approx((4 / 9 + 1) / 2, abs=1e-12)
    assert r["AP50"] == pytest.approx((5 / 9 + 1) / 2, abs=1e-12)
    assert r["AP75"] == pytest.approx((1 / 3 + 1) / 2, abs=1e-12)


def test_difficult_counts_when_not_flagged() -> None:
    """Same data with the difficult flags cleared: E becomes a TP + a duplicate FP, F a miss."""
    gt = copy.deepcopy(GT)
    for a in gt["annotations"]:
        a["difficult"] = 0
    r = voc_summary(gt, DETS, use_07_metric=False)
    # npos 3; cum TP 1,1,2 FP 0,1,1 -> rec 1/3,1/3,2/3 prec 1,1/2,2/3 -> 1/3 + 1/3*2/3 = 5/9
    assert r["per_class"]["dog"] == pytest.approx(5 / 9, abs=1e-12)


def test_iou_threshold_is_strict() -> None:
    """voc_eval needs IoU > t: a box with IoU exactly 0.5 is a FP at 0.5 (COCO would take it)."""
    gt = {
        "images": [_img(1)],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [_ann(1, 1, 1, [0, 0, 10, 10])],
    }
    r = voc_summary(gt, [_det(1, 1, [0, 0, 10, 5], 0.9)], use_07_metric=False)  # IoU 50/100
    assert r["AP50"] == 0.0
    r = voc_summary(gt, [_det(1, 1, [0, 0, 10, 5.1], 0.9)], use_07_metric=False)  # IoU .51
    assert r["AP50"] == 1.0 and r["AP75"] == 0.0


def test_plus_one_convention_equals_plain_iou_of_coco_boxes() -> None:
    # COCO [0,0,10,10] -> VOC (1,1,10,10); [5,0,10,10] -> (6,1,15,10).
    assert to_voc_corners(np.array([[5, 0, 10, 10]])).tolist() == [[6, 1, 15, 10]]
    iou = voc_iou(
        to_voc_corners(np.array([[5, 0, 10, 10]])), to_voc_corners(np.array([[0, 0, 10, 10]]))
    )
    assert iou[0, 0] == pytest.approx(50 / 150)  # overlap 5x10 over 100 + 100 - 50
    # The raw +1 formula on VOC corners: (1,1,10,10) vs (1,1,5,10) -> 5*10 / (100 + 50 - 50).
    assert voc_iou(np.array([[1, 1, 10, 10.0]]), np.array([[1, 1, 5, 10.0]]))[0, 0] == 0.5


def test_11_point_recall_grid_is_voc_evals_arange() -> None:
    # np.arange(0, 1.1, 0.1)[3] is 0.30000000000000004 > 0.3, so a curve that stops at recall
    # 0.3 gets 3 of 11 points (0, .1, .2), as in voc_eval, not 4.
    assert voc_ap(np.array([0.1, 0.2, 0.3]), np.ones(3), use_07_metric=True) == 3 / 11


def test_area_ap_of_perfect_and_empty_curves() -> None:
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 1.0]), use_07_metric=False) == 1.0
    assert voc_ap(np.zeros(0), np.zeros(0), use_07_metric=False) == 0.0
    assert voc_ap(np.zeros(0), np.zeros(0), use_07_metric=True) == 0.0


def test_empty_predictions_give_zero_for_classes_with_gt() -> None:
    r = voc_summary(GT, [], use_07_metric=True)
    assert r["per_class"] == {"cat": 0.0, "dog": 0.0, "cow": None}
    assert (r["AP"], r["AP50"], r["AP75"]) == (0.0, 0.0, 0.0)


def test_no_ground_truth_at_all_gives_minus_one() -> None:
    gt = {"images": [_img(1)], "categories": [{"id": 1, "name": "a"}], "annotations": []}
    r = voc_summary(gt, [_det(1, 1, [0, 0, 5, 5], 0.5)], use_07_metric=False)
    assert (r["AP"], r["AP50"], r["AP75"]) == (-1.0, -1.0, -1.0)
    assert r["per_class"] == {"a": None}


def test_inputs_not_mutated_and_unknown_category_rejected() -> None:
    gt, dets = copy.deepcopy(GT), copy.deepcopy(DETS)
    voc_summary(gt, dets, use_07_metric=True)
    assert gt == GT and dets == DETS
    with pytest.raises(DataError, match=r"\[1\]\.category_id=9: unknown category id"):
        voc_summary(GT, [DETS[0], _det(1, 9, [0, 0, 1, 1], 0.1)], use_07_metric=True)


def test_dispatch_through_evaluate_predictions() -> None:
    assert evaluate_predictions(GT, DETS, "voc07") == voc_summary(GT, DETS, use_07_metric=True)
    assert evaluate_predictions(GT, DETS, "voc") == voc_summary(GT, DETS, use_07_metric=False)


def _reference_class_ap(gt: dict, dets: list[dict], cat: int, thresh: float, use07: bool):
    """voc_eval's algorithm written plainly: one detection at a time, +1 pixel IoU."""
    by_image: dict[int, list[dict]] = {img["id"]: [] for img in gt["images"]}
    for a in gt["annotations"]:
        if a["category_id"] == cat:
            by_image[a["image_id"]].append(a)
    recs: dict[int, dict] = {}
    npos = 0
    for img_id, objs in by_image.items():
        diff = [bool(a.get("difficult", 0) or a.get("iscrowd", 0)) for a in objs]
        npos += sum(not d for d in diff)
        boxes = [(b[0] + 1, b[1] + 1, b[0] + b[2], b[1] + b[3]) for b in (a["bbox"] for a in objs)]
        recs[img_id] = {"boxes": boxes, "difficult": diff, "taken": [False] * len(objs)}
    if npos == 0:
        return None
    mine = sorted((d for d in dets if d["category_id"] == cat), key=lambda d: -d["score"])
    tp, fp = [], []
    for d in mine:
        b = d["bbox"]
        x1, y1, x2, y2 = b[0] + 1, b[1] + 1, b[0] + b[2], b[1] + b[3]
        r = recs[d["image_id"]]
        best, jbest = -np.inf, -1
        for j, (g1, h1, g2, h2) in enumerate(r["boxes"]):
            iw = max(min(x2, g2) - max(x1, g1) + 1.0, 0.0)
            ih = max(min(y2, h2) - max(y1, h1) + 1.0, 0.0)
            inter = iw * ih
            union = (x2 - x1 + 1) * (y2 - y1 + 1) + (g2 - g1 + 1) * (h2 - h1 + 1) - inter
            if inter / union > best:
                best, jbest = inter / union, j
        t = f = 0.0
        if best > thresh:
            if not r["difficult"][jbest]:
                if r["taken"][jbest]:
                    f = 1.0
                else:
                    t, r["taken"][jbest] = 1.0, True
        else:
            f = 1.0
        tp.append(t)
        fp.append(f)
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    rec = ctp / npos
    prec = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    if use07:
        return (
            sum(
                (prec[rec >= t].max() if (rec >= t).any() else 0.0)
                for t in np.arange(0.0, 1.1, 0.1)
            )
            / 11.0
        )
    ap, prev_r = 0.0, 0.0
    for k in range(len(rec)):  # area under the monotone envelope, point by point
        if rec[k] > prev_r:
            ap += (rec[k] - prev_r) * prec[k:].max()
            prev_r = rec[k]
    return ap


@pytest.mark.parametrize("use07", [True, False])
def test_matches_plain_reference_on_coco_fixture(use07: bool) -> None:
    """100 COCO images (crowd boxes act as difficult) with the COCO API's fake detections."""
    base = _fixtures() / "coco_known_answer"
    gt = json.loads((base / "instances_val2014_100.json").read_text())
    dets = json.loads((base / "instances_val2014_fakebbox100_results.json").read_text())
    # Scores in this file repeat: both sides keep the input order on ties (stable sorts,
    # full precision: the unrounded protocol).
    r = voc_summary(gt, dets, use_07_metric=use07, rounded=False)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    table = {}
    for cat, name in names.items():
        aps = [_reference_class_ap(gt, dets, cat, t, use07) for t in IOU_THRESHOLDS]
        if aps[0] is None:
            assert r["per_class"][name] is None
            continue
        table[name] = aps
        assert r["per_class"][name] == pytest.approx(np.mean(aps), abs=1e-12)
        assert r["per_class_ap50"][name] == pytest.approx(aps[0], abs=1e-12)
    by_t = np.mean(list(table.values()), axis=0)
    assert r["AP"] == pytest.approx(by_t.mean(), abs=1e-12)
    assert r["AP50"] == pytest.approx(by_t[0], abs=1e-12)
    assert r["AP75"] == pytest.approx(by_t[5], abs=1e-12)
