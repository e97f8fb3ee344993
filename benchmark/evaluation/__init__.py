"""Evaluation: per-split metrics of saved predictions and the cell summary built from them.

Layout (each module one job; none imports the report, training or models):

* :mod:`~benchmark.evaluation.loading` — read / validate ground truth and predictions;
* :mod:`~benchmark.evaluation.coco` — the 12 COCO numbers (pycocotools), on boxes and, for
  instance-mask predictions, on masks (``mask_*``);
* :mod:`~benchmark.evaluation.masks` — predicted masks as COCO RLE;
* :mod:`~benchmark.evaluation.voc` — VOC-style AP (detectron2 / py-faster-rcnn ``voc_eval``);
* :mod:`~benchmark.evaluation.matching` — per-image matches and AP of resampled images (the
  report's bootstrap);
* :mod:`~benchmark.evaluation.robustness` — P / mPC / rPC, OOD mean and gap, effective
  robustness;
* :mod:`~benchmark.evaluation.summary_metrics` — the summary-metric table;
* :mod:`~benchmark.evaluation.record` — the run record: schema, construction, validation;
* this module — :func:`evaluate_split` and :func:`summarize` (the pipeline's entry points)
  and :func:`evaluate_predictions` (the ``python -m benchmark.evaluation`` dispatch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import ConfigError, field_error
from benchmark.evaluation.coco import coco_summary, gt_has_masks, mask_summary
from benchmark.evaluation.summary_metrics import CellMetrics, metric_entries
from benchmark.evaluation.voc import VOC_PROTOCOLS, voc_protocol_summary
from benchmark.families import FAMILIES
from benchmark.spec import RunSpec

PROTOCOLS = ("coco", *VOC_PROTOCOLS)


def evaluate_split(
    spec: RunSpec, split: str, gt: Path, predictions: list[dict[str, Any]]
) -> dict[str, Any]:
    """The metrics of one eval split: COCO's 12 numbers, plus VOC-style AP where the
    family's protocol asks for it (:meth:`benchmark.families.Family.ap_protocol`). The COCO
    numbers come from the schedule's ``eval_backend`` (pycocotools unless set). An
    instance-mask engine also gets mask AP on splits whose ground truth has masks; a box-only
    split (BDD100K) records none, so the cell's OOD mask mean is undefined there."""
    metrics = coco_summary(gt, predictions, backend=spec.schedule.eval_backend)
    if any("segmentation" in p for p in predictions) and gt_has_masks(gt):
        metrics.update(mask_summary(gt, predictions))
    protocol = FAMILIES.get(spec.family).ap_protocol(split)
    if protocol is not None:
        metrics["voc"] = voc_protocol_summary(gt, predictions, protocol)
        metrics["voc"]["protocol"] = protocol
    return metrics


def summarize(spec: RunSpec, metrics: dict[str, dict]) -> dict[str, Any]:
    """The cell summary (``record["summary"]``): the family's summary protocol and every
    ``source="summary"`` metric of the table, computed from the per-split metrics."""
    cell = CellMetrics(spec, metrics)
    summary: dict[str, Any] = {"protocol": FAMILIES.get(spec.family).summary_protocol}
    for m in metric_entries("summary"):
        assert m.compute is not None  # guaranteed for source="summary"
        summary[m.key] = m.compute(cell)
    return summary


def evaluate_predictions(
    gt: Path | str | dict[str, Any],
    predictions: Path | str | Sequence[dict[str, Any]],
    protocol: str = "coco",
    backend: str = "pycocotools",
) -> dict[str, Any]:
    """Dispatch: ``coco`` → :func:`coco_summary` (with ``backend``); ``voc`` (area under PR)
    and ``voc07`` (11-point), as detectron2's evaluator rounds them, and their
    ``_unrounded`` variants → :func:`voc_summary`."""
    if protocol == "coco":
        return coco_summary(gt, predictions, backend=backend)
    if protocol in VOC_PROTOCOLS:
        return voc_protocol_summary(gt, predictions, protocol)
    raise field_error(
        ConfigError, "<arguments>", "protocol", protocol, f"expected one of {PROTOCOLS}"
    )
