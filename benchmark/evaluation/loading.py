"""Reading and validating evaluation inputs: COCO ground truth and COCO results lists.

Inputs everywhere: a COCO detection GT (dict or path to JSON, the prepared-split format) and
a COCO results list (list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``
or a path to such a JSON file). Shared by the COCO and VOC scorers and by the report's
bootstrap, so none of them imports another.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.data.split import validate_coco
from benchmark.errors import DataError, field_error

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
