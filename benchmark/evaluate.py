"""COCO-style bbox evaluation (real pycocotools) and the `python -m benchmark.evaluate` CLI.

Inputs everywhere: a COCO detection GT (dict or path to JSON, the prepared-split format) and
a COCO results list (list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``
or a path to such a JSON file). Values are fractions, exactly as pycocotools returns them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from benchmark.data.split import validate_coco
from benchmark.errors import BenchmarkError, ConfigError, DataError, field_error
from benchmark.store import atomic_write_json

COCO_KEYS = (
    "AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
)
PROTOCOLS = ("coco", "voc", "voc07")
PREDICTIONS_SOURCE = "<predictions>"
GT_SOURCE = "<ground truth>"


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: malformed JSON: {e}") from None


def load_gt(gt: Path | str | dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Return a validated GT dict and the name to use in error messages.

    A dict is returned as given (callers copy before anything can mutate it).
    """
    if isinstance(gt, dict):
        source = GT_SOURCE
        data = gt
    else:
        source = str(gt)
        data = _read_json(Path(gt))
    validate_coco(data, source)
    return data, source


def load_predictions(predictions: Path | str | Sequence[dict[str, Any]]) -> tuple[list, str]:
    """Return the predictions list (not yet validated) and its name for error messages."""
    if isinstance(predictions, Path | str):
        source = str(predictions)
        data = _read_json(Path(predictions))
    else:
        source = PREDICTIONS_SOURCE
        data = predictions
    if not isinstance(data, list | tuple):
        raise field_error(
            DataError, source, "<root>", type(data).__name__, "expected a list of detections"
        )
    return list(data), source


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def validate_predictions(
    predictions: Sequence[Any], gt: dict[str, Any], source: str = PREDICTIONS_SOURCE
) -> None:
    """Raise DataError ``file: [i].field=value: problem`` for the first bad detection."""
    image_ids = {img["id"] for img in gt["images"]}
    cat_ids = {cat["id"] for cat in gt["categories"]}
    for i, det in enumerate(predictions):
        if not isinstance(det, dict):
            raise field_error(DataError, source, f"[{i}]", type(det).__name__, "expected an object")
        for key in ("image_id", "category_id", "bbox", "score"):
            if key not in det:
                raise field_error(DataError, source, f"[{i}].{key}", None, "missing")
        if det["image_id"] not in image_ids:
            raise field_error(
                DataError, source, f"[{i}].image_id", det["image_id"], "unknown image id"
            )
        if det["category_id"] not in cat_ids:
            raise field_error(
                DataError, source, f"[{i}].category_id", det["category_id"], "unknown category id"
            )
        bbox = det["bbox"]
        if not (isinstance(bbox, list | tuple) and len(bbox) == 4 and all(map(_is_number, bbox))):
            raise field_error(DataError, source, f"[{i}].bbox", bbox, "expected [x, y, w, h]")
        if bbox[2] < 0 or bbox[3] < 0:
            raise field_error(DataError, source, f"[{i}].bbox", bbox, "negative width or height")
        if not _is_number(det["score"]):
            raise field_error(DataError, source, f"[{i}].score", det["score"], "expected a number")


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


def coco_summary(
    gt: Path | str | dict[str, Any],
    predictions: Path | str | Sequence[dict[str, Any]],
    *,
    verbose: bool = False,
) -> dict[str, float]:
    """The 12 COCOeval bbox summary numbers keyed by COCO_KEYS (pycocotools prints only if
    ``verbose``)."""
    gt_data, _ = load_gt(gt)
    preds, source = load_predictions(predictions)
    validate_predictions(preds, gt_data, source)
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        coco_gt = _coco_gt(gt_data)
        coco_dt = _coco_dt(coco_gt, preds)
        ev = _DifficultAwareCOCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = np.asarray(ev.stats, dtype=float)
    return {k: float(v) for k, v in zip(COCO_KEYS, stats, strict=True)}


def evaluate_predictions(
    gt: Path | str | dict[str, Any],
    predictions: Path | str | Sequence[dict[str, Any]],
    protocol: str = "coco",
) -> dict[str, Any]:
    """Dispatch: ``coco`` → :func:`coco_summary`; ``voc`` (area under PR) and ``voc07``
    (11-point) → :func:`benchmark.voc_eval.voc_summary`."""
    if protocol == "coco":
        return coco_summary(gt, predictions)
    if protocol in ("voc", "voc07"):
        from benchmark.voc_eval import voc_summary  # voc_eval imports this module

        return voc_summary(gt, predictions, use_07_metric=protocol == "voc07")
    raise field_error(
        ConfigError, "<arguments>", "protocol", protocol, f"expected one of {PROTOCOLS}"
    )


def format_summary(result: dict[str, Any]) -> str:
    lines = [f"{k:<6} {result[k]:.3f}" for k in COCO_KEYS if k in result]
    if "per_class" in result:
        lines.append("per-class AP@[.5:.95] (AP50):")
        ap50 = result.get("per_class_ap50", {})
        for name, ap in result["per_class"].items():
            if ap is None:
                lines.append(f"  {name:<16} -      (no ground truth)")
            else:
                lines.append(f"  {name:<16} {ap:.3f}  ({ap50.get(name, float('nan')):.3f})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.evaluate", description="Evaluate COCO-format detections."
    )
    parser.add_argument("--gt", required=True, type=Path, help="COCO ground-truth JSON")
    parser.add_argument("--predictions", required=True, type=Path, help="COCO results JSON")
    parser.add_argument("--json", type=Path, help="write the summary here (atomically)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="coco")
    args = parser.parse_args(argv)
    try:
        result = evaluate_predictions(args.gt, args.predictions, args.protocol)
        print(format_summary(result))
        if args.json is not None:
            atomic_write_json(args.json, result)
    except (BenchmarkError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
