"""Pascal-VOC-style AP, computed the way the Pascal → Clipart/Watercolor/Comic numbers were.

Reference: detectron2's ``PascalVOCDetectionEvaluator`` and its ``voc_eval`` (from
py-faster-rcnn). Per class and IoU threshold t in 0.50, 0.55, …, 0.95:

* detections of the class are sorted by score (descending) over the whole split;
* each is compared with *all* GT boxes of its image and class (difficult ones included) and
  takes the one of highest IoU (first in annotation order on ties); if that IoU is > t
  (strictly, as in voc_eval) it is a TP when the box is not difficult and not yet taken, a
  FP when already taken, and *neither* when the box is difficult (any number of times).
  Otherwise it is a FP. npos counts non-difficult GT boxes only;
* AP is the 11-point interpolated AP (``use_07_metric=True``, VOC2007 test) or the area under
  the monotone precision envelope (otherwise), as ``voc_ap`` computes them.

AP@[.5:.95] is the mean over the 10 thresholds of the mean over classes; classes without
(non-difficult) ground truth in the split are skipped (reported as ``None``).

Box convention. voc_eval adds 1 to every width/height (VOC's 1-based inclusive pixel
coordinates). detectron2 loads VOC XML as ``(xmin - 1, ymin - 1, xmax, ymax)`` and writes its
predictions back as ``(x1 + 1, y1 + 1, x2, y2)`` before voc_eval sees them. We do the same:
COCO ``[x, y, w, h]`` becomes ``(x + 1, y + 1, x + w, y + h)`` and IoU uses the +1 formula,
which makes it equal to the plain IoU of the COCO boxes. Prepared VOC-layout splits must
therefore store ``x = xmin - 1, y = ymin - 1, w = xmax - xmin + 1, h = ymax - ymin + 1``.

Text rounding (the default, ``rounded=True``: protocols ``voc`` / ``voc07``). detectron2's
evaluator writes every detection to a text file as ``f"{score:.3f} {xmin + 1:.1f} {ymin + 1:.1f}
{xmax:.1f} {ymax:.1f}"`` and reads it back (detectron2@02b5c4e2,
detectron2/evaluation/pascal_voc_evaluation.py lines 64-67, ``process``), then sorts each
class's detections with numpy's default (unstable) ``np.argsort(-confidence)`` (line 245) in
the order they were written — image by
image, each image's detections in the model's order, which is the order of saved
predictions. We apply the same rounding to the saved predictions (``xmax = x + w``) and the
same sort, so ties and IoUs near a threshold come out as in the study; ``rounded=False``
(protocols ``voc_unrounded`` / ``voc07_unrounded``) keeps full precision and a stable sort.
Differences that remain, deliberate: classes without ground truth are skipped (detectron2
divides by zero and averages a NaN); ``iscrowd`` GT boxes (none in VOC data) count as
difficult. numpy's unstable sort may order equal scores differently on another CPU (its
SIMD sorts): so does detectron2's evaluator there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import DataError, field_error
from benchmark.evaluation.loading import load_gt, load_predictions, validate_predictions

#: protocol name → (11-point?, detectron2's text rounding?)
VOC_PROTOCOLS: dict[str, tuple[bool, bool]] = {
    "voc": (False, True),
    "voc07": (True, True),
    "voc_unrounded": (False, False),
    "voc07_unrounded": (True, False),
}

IOU_THRESHOLDS: tuple[float, ...] = tuple(t / 100.0 for t in range(50, 100, 5))
# voc_eval's recall points, built the same way: 0.30000000000000004 etc., not 0.3.
_RECALL_POINTS = np.arange(0.0, 1.1, 0.1)

DEFINITION = """\
**VOC protocols** (columns marked VOC; the published Pascal → Clipart / Watercolor / Comic
  numbers): per class, detections sorted by score over the split; each takes the ground-truth
  box of highest IoU in its image; it is a true positive if that IoU exceeds t and the box is
  not yet taken, ignored if the box is `difficult`, a false positive otherwise. AP =
  11-point interpolated precision (recall 0, 0.1, …, 1) on VOC2007 test, the area under the
  monotone precision envelope on the other VOC-layout sets; averaged over IoU 0.50:0.05:0.95
  and over classes with non-difficult ground truth (classes without any are skipped)."""


def to_voc_corners(xywh: np.ndarray) -> np.ndarray:
    """COCO ``[x, y, w, h]`` rows → VOC 1-based inclusive ``[xmin, ymin, xmax, ymax]`` rows."""
    b = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0] + 1.0, b[:, 1] + 1.0, b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)


def voc_iou(dets: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """IoU matrix (len(dets), len(gts)) of VOC corner boxes with voc_eval's +1 widths."""
    d = dets[:, None, :]
    g = gts[None, :, :]
    iw = np.maximum(np.minimum(d[..., 2], g[..., 2]) - np.maximum(d[..., 0], g[..., 0]) + 1.0, 0.0)
    ih = np.maximum(np.minimum(d[..., 3], g[..., 3]) - np.maximum(d[..., 1], g[..., 1]) + 1.0, 0.0)
    inter = iw * ih
    area_d = (d[..., 2] - d[..., 0] + 1.0) * (d[..., 3] - d[..., 1] + 1.0)
    area_g = (g[..., 2] - g[..., 0] + 1.0) * (g[..., 3] - g[..., 1] + 1.0)
    return inter / (area_d + area_g - inter)


def voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool) -> float:
    """AP from a recall/precision curve, as voc_eval's ``voc_ap``."""
    rec = np.asarray(rec, dtype=np.float64)
    prec = np.asarray(prec, dtype=np.float64)
    if use_07_metric:
        total = 0.0
        for t in _RECALL_POINTS:
            above = prec[rec >= t]
            total += (above.max() if above.size else 0.0) / 11.0
        return float(total)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


class _ClassMatches:
    """Threshold-independent part of matching one class: each detection's best GT and IoU."""

    def __init__(
        self,
        det_scores: np.ndarray,
        ovmax: np.ndarray,
        jmax: np.ndarray,
        difficult: np.ndarray,
        npos: int,
        stable: bool = True,
    ) -> None:
        # detectron2's voc_eval: np.argsort(-confidence), numpy's default (unstable) kind
        order = np.argsort(-det_scores, kind="stable" if stable else None)
        self.ovmax = ovmax[order]
        self.jmax = jmax[order]
        self.difficult = difficult  # indexed by jmax (global GT index)
        self.npos = npos

    def tp_fp(self, thresh: float) -> tuple[np.ndarray, np.ndarray]:
        hit = self.ovmax > thresh
        ignored = np.zeros_like(hit)
        ignored[hit] = self.difficult[self.jmax[hit]]
        cand = np.flatnonzero(hit & ~ignored)
        # Greedy in score order: the first candidate on a GT box takes it, later ones are FP.
        _, first = np.unique(self.jmax[cand], return_index=True)
        tp = np.zeros(self.ovmax.size)
        tp[cand[first]] = 1.0
        fp = (~ignored).astype(np.float64) - tp
        return tp, fp

    def ap(self, thresh: float, use_07_metric: bool) -> float:
        tp, fp = self.tp_fp(thresh)
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        rec = tp / float(self.npos)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        return voc_ap(rec, prec, use_07_metric)


def _as_written(corners: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corners and scores after detectron2's round trip through text (``.1f`` / ``.3f``)."""
    rounded = np.asarray([[float(f"{v:.1f}") for v in row] for row in corners.tolist()])
    return rounded.reshape(-1, 4), np.asarray([float(f"{v:.3f}") for v in scores.tolist()])


def _class_matches(
    gt: dict[str, Any], predictions: list[dict[str, Any]], rounded: bool
) -> dict[int, _ClassMatches]:
    gt_by_key: dict[tuple[int, int], list[int]] = defaultdict(list)
    boxes, difficult = [], []
    npos: dict[int, int] = defaultdict(int)
    for a in gt["annotations"]:
        gt_by_key[(a["category_id"], a["image_id"])].append(len(boxes))
        boxes.append(a["bbox"])
        hard = bool(a.get("difficult", 0)) or bool(a.get("iscrowd", 0))
        difficult.append(hard)
        npos[a["category_id"]] += not hard
    gt_corners = to_voc_corners(np.asarray(boxes, dtype=np.float64))
    gt_difficult = np.asarray(difficult, dtype=bool)

    det_by_key: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, d in enumerate(predictions):
        det_by_key[(d["category_id"], d["image_id"])].append(i)
    det_corners = to_voc_corners(np.asarray([d["bbox"] for d in predictions], dtype=np.float64))
    det_scores = np.asarray([d["score"] for d in predictions], dtype=np.float64)
    if rounded:
        det_corners, det_scores = _as_written(det_corners, det_scores)

    # Per class: detections (any order), their best IoU and best GT (global index, -1 = none).
    per_class: dict[int, tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]] = (
        defaultdict(lambda: ([], [], []))
    )
    for (cat, img), det_idx in det_by_key.items():
        idx = np.asarray(det_idx)
        gt_idx = np.asarray(gt_by_key.get((cat, img), []), dtype=np.int64)
        if gt_idx.size:
            ious = voc_iou(det_corners[idx], gt_corners[gt_idx])
            ovmax = ious.max(axis=1)
            jmax = gt_idx[ious.argmax(axis=1)]
        else:
            ovmax = np.full(idx.size, -np.inf)
            jmax = np.full(idx.size, -1, dtype=np.int64)
        dets, ovs, js = per_class[cat]
        dets.append(idx)
        ovs.append(ovmax)
        js.append(jmax)

    out = {}
    for cat in {c["id"] for c in gt["categories"]}:
        dets, ovs, js = per_class.get(cat, ([], [], []))
        idx = np.concatenate(dets) if dets else np.zeros(0, dtype=np.int64)
        ovmax = np.concatenate(ovs) if ovs else np.zeros(0)
        jmax = np.concatenate(js) if js else np.zeros(0, dtype=np.int64)
        # Stable sort by score needs the detections back in input order first.
        back = np.argsort(idx, kind="stable")
        out[cat] = _ClassMatches(
            det_scores[idx[back]], ovmax[back], jmax[back], gt_difficult, npos[cat],
            stable=not rounded,
        )
    return out


def voc_summary(
    gt: Path | str | dict[str, Any],
    predictions: Path | str | Sequence[dict[str, Any]],
    *,
    use_07_metric: bool,
    rounded: bool = True,
) -> dict[str, Any]:
    """VOC-style AP (fractions): AP@[.5:.95], AP50, AP75 and per-class AP@[.5:.95] / AP50.
    ``rounded``: detections as detectron2's evaluator sees them (see the module docstring).

    Classes without non-difficult ground truth map to ``None`` and are left out of the means;
    if no class has any, the three means are -1 (pycocotools' convention for "no GT").
    """
    gt_data, gt_source = load_gt(gt)
    preds, source = load_predictions(predictions)
    validate_predictions(preds, gt_data, source)
    names: dict[int, str] = {}
    for i, cat in enumerate(gt_data["categories"]):
        if cat["name"] in names.values():
            raise field_error(
                DataError, gt_source, f"categories[{i}].name", cat["name"], "duplicate name"
            )
        names[cat["id"]] = cat["name"]

    matches = _class_matches(gt_data, preds, rounded)
    per_thresh: dict[str, list[float]] = {}
    for cat in sorted(names):
        m = matches[cat]
        if m.npos > 0:
            per_thresh[names[cat]] = [m.ap(t, use_07_metric) for t in IOU_THRESHOLDS]

    per_class: dict[str, float | None] = {names[c]: None for c in sorted(names)}
    per_class_ap50: dict[str, float | None] = dict(per_class)
    for name, aps in per_thresh.items():
        per_class[name] = float(np.mean(aps))
        per_class_ap50[name] = aps[0]
    if not per_thresh:
        none = {"AP": -1.0, "AP50": -1.0, "AP75": -1.0}
        return {**none, "per_class": per_class, "per_class_ap50": per_class_ap50}
    table = np.asarray(list(per_thresh.values()))  # classes × thresholds
    by_thresh = table.mean(axis=0)
    return {
        "AP": float(by_thresh.mean()),
        "AP50": float(by_thresh[IOU_THRESHOLDS.index(0.5)]),
        "AP75": float(by_thresh[IOU_THRESHOLDS.index(0.75)]),
        "per_class": per_class,
        "per_class_ap50": per_class_ap50,
    }


def voc_protocol_summary(
    gt: Path | str | dict[str, Any],
    predictions: Path | str | Sequence[dict[str, Any]],
    protocol: str,
) -> dict[str, Any]:
    """:func:`voc_summary` under a named protocol of :data:`VOC_PROTOCOLS`."""
    use_07_metric, rounded = VOC_PROTOCOLS[protocol]
    return voc_summary(gt, predictions, use_07_metric=use_07_metric, rounded=rounded)
