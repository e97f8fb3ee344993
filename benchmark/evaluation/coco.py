"""COCO-style bbox evaluation (real pycocotools): the 12 summary numbers of a prediction set.

Values are fractions, exactly as pycocotools returns them. :data:`DEFINITION` is the text of
the protocol in BENCHMARKS.md's "Metric definitions".
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from benchmark.errors import ConfigError, DataError
from benchmark.evaluation.loading import load_gt, load_predictions, validate_predictions
from benchmark.spec import EVAL_BACKENDS

COCO_KEYS = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)

DEFINITION = """\
**AP, AP50, AP75** (COCO protocol, every `AP` column unless marked VOC): pycocotools
  `COCOeval` on bounding boxes, area range "all", at most 100 detections per image; per class
  and IoU threshold, precision interpolated at the 101 recall points 0:0.01:1 (precision at
  recall r = the maximum precision at any recall ≥ r) and averaged; AP = mean over IoU
  thresholds 0.50:0.05:0.95 and over the classes that have ground truth in the split; AP50 /
  AP75 at IoU 0.50 / 0.75. Crowd boxes and VOC `difficult` boxes are ignored (a detection
  matched to one counts neither as true nor as false positive). Values are fractions in
  the records and percent here."""

class _DifficultAwareCOCOeval(COCOeval):
    """COCOeval that ignores GT boxes marked ``difficult: 1``.

    pycocotools' ``_prepare`` overwrites ``gt['ignore']`` with ``iscrowd``, so ``ignore`` cannot
    be set from outside. Setting ``iscrowd`` instead would change the IoU (crowd IoU is
    intersection over the detection's area) and let one box absorb any number of detections.
    We re-set ``ignore`` after ``_prepare``: a difficult box is then handled exactly like a box
    outside the evaluated area range — normal IoU, matched at most once, a detection matched
    to it is ignored (neither TP nor FP) and an unmatched one is not a false negative.
    """

    def _prepare(self) -> None:
        super()._prepare()
        for gts in self._gts.values():
            for g in gts:
                if g.get("difficult"):
                    g["ignore"] = 1


def _coco_gt(gt: dict[str, Any]) -> COCO:
    """A COCO object over a private copy: pycocotools writes ``ignore`` into GT annotations."""
    anns = []
    for a in gt["annotations"]:
        a = dict(a)
        if "area" not in a:
            a["area"] = a["bbox"][2] * a["bbox"][3]
        anns.append(a)
    coco = COCO()
    coco.dataset = {
        "images": [dict(img) for img in gt["images"]],
        "categories": [dict(cat) for cat in gt["categories"]],
        "annotations": anns,
    }
    coco.createIndex()
    return coco


def _coco_dt(coco_gt: COCO, predictions: list[dict[str, Any]]) -> COCO:
    """Load results without touching the caller's dicts (``loadRes`` adds keys in place).

    ``loadRes`` crashes on an empty list (it reads ``anns[0]``). An empty result set is built
    directly instead, so pycocotools still runs and reports what an evaluation with no
    detections means: 0 for every AP/AR whose area range has ground truth, -1 where it has none.
    """
    if not predictions:
        dt = COCO()
        dt.dataset = {
            "images": list(coco_gt.dataset["images"]),
            "categories": [dict(c) for c in coco_gt.dataset["categories"]],
            "annotations": [],
        }
        dt.createIndex()
        return dt
    clean = [
        {
            "image_id": d["image_id"],
            "category_id": d["category_id"],
            "bbox": list(d["bbox"]),
            "score": d["score"],
        }
        for d in predictions
    ]
    return coco_gt.loadRes(clean)


#: COCO evaluators: pycocotools (the reference) and faster-coco-eval (its C++ drop-in; equal
#: to 1e-6 on the known-answer fixture, tests/evaluation/test_coco.py)
BACKENDS = EVAL_BACKENDS  # one spelling: the schedule's eval_backend validates against it


def _faster_stats(gt_data: dict[str, Any], preds: list[dict[str, Any]]) -> np.ndarray:
    """The 12 statistics from faster-coco-eval. It has no hook for VOC's ``difficult`` boxes
    (pycocotools' ``_prepare`` is overridden for them above), so such ground truth is refused
    rather than scored differently."""
    if any(a.get("difficult") for a in gt_data["annotations"]):
        raise ConfigError("backend='faster_coco_eval': the ground truth has difficult boxes, "
                          "which only the pycocotools backend ignores as VOC does")
    from faster_coco_eval import COCO as FasterCOCO
    from faster_coco_eval import COCOeval_faster

    coco_gt = FasterCOCO()
    coco_gt.dataset = _coco_gt(gt_data).dataset
    coco_gt.createIndex()
    clean = [{k: d[k] for k in ("image_id", "category_id", "bbox", "score")} for d in preds]
    if clean:
        coco_dt = coco_gt.loadRes(clean)
    else:
        coco_dt = FasterCOCO()
        coco_dt.dataset = {**coco_gt.dataset, "annotations": []}
        coco_dt.createIndex()
    ev = COCOeval_faster(coco_gt, coco_dt, iouType="bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.asarray(ev.stats[:12], dtype=float)


#: per-split keys of the mask AP (``iouType="segm"``), next to the box keys
MASK_KEYS = tuple(f"mask_{k}" for k in COCO_KEYS)


def gt_has_masks(gt: Path | str | dict[str, Any]) -> bool:
    """Whether a split's ground truth carries instance masks: every annotation has a
    ``segmentation`` (True) or none has (False: a box-only split such as BDD100K, where an
    instance-mask engine is scored on boxes only); a split with some is refused."""
    anns = load_gt(gt)[0]["annotations"]
    with_masks = sum("segmentation" in a for a in anns)
    if 0 < with_masks < len(anns):
        a = next(a for a in anns if "segmentation" not in a)
        raise DataError(f"mask AP: ground-truth annotation {a.get('id')} of image "
                        f"{a.get('image_id')} has no segmentation ({with_masks} of "
                        f"{len(anns)} annotations have one)")
    return bool(anns) and with_masks == len(anns)


def mask_summary(
    gt: Path | str | dict[str, Any],
    predictions: Path | str | Sequence[dict[str, Any]],
    *,
    verbose: bool = False,
) -> dict[str, float]:
    """The 12 COCOeval numbers on instance masks (pycocotools ``iouType="segm"``), keyed by
    :data:`MASK_KEYS`. Every ground-truth annotation and every detection needs a COCO
    ``segmentation`` (polygons or RLE; :func:`benchmark.evaluation.masks.encode_masks`)."""
    gt_data, _ = load_gt(gt)
    preds, source = load_predictions(predictions)
    validate_predictions(preds, gt_data, source)
    for a in gt_data["annotations"]:
        if "segmentation" not in a:
            raise DataError(f"mask AP: ground-truth annotation {a.get('id')} of image "
                            f"{a.get('image_id')} has no segmentation")
    for i, d in enumerate(preds):
        if "segmentation" not in d:
            raise DataError(f"{source}: [{i}].segmentation: missing (mask AP needs it)")
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        coco_gt = _coco_gt(gt_data)
        if preds:
            # without "bbox": loadRes would replace the mask by the box and its area by the
            # box area (detectron2 drops it too: detectron2/evaluation/coco_evaluation.py
            # lines 583–588)
            coco_dt = coco_gt.loadRes([
                {k: d[k] for k in ("image_id", "category_id", "score", "segmentation")}
                for d in preds
            ])
        else:
            coco_dt = _coco_dt(coco_gt, [])
        ev = _DifficultAwareCOCOeval(coco_gt, coco_dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) for k, v in zip(MASK_KEYS, ev.stats, strict=True)}


def coco_summary(
    gt: Path | str | dict[str, Any],
    predictions: Path | str | Sequence[dict[str, Any]],
    *,
    verbose: bool = False,
    backend: str = "pycocotools",
) -> dict[str, float]:
    """The 12 COCOeval bbox summary numbers keyed by COCO_KEYS (the evaluator prints only if
    ``verbose``); ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")
    gt_data, _ = load_gt(gt)
    preds, source = load_predictions(predictions)
    validate_predictions(preds, gt_data, source)
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    if backend == "faster_coco_eval":
        with sink:
            stats = _faster_stats(gt_data, preds)
        return {k: float(v) for k, v in zip(COCO_KEYS, stats, strict=True)}
    with sink:
        coco_gt = _coco_gt(gt_data)
        coco_dt = _coco_dt(coco_gt, preds)
        ev = _DifficultAwareCOCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats, dtype=float)
    return {k: float(v) for k, v in zip(COCO_KEYS, stats, strict=True)}
