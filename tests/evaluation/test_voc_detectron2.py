"""The default VOC protocols reproduce the study's evaluator (detectron2's
``PascalVOCDetectionEvaluator``) exactly, text rounding and 1-based pixels included.

Expected values: the fixture of ``voc_fixture.py`` evaluated by detectron2's own ``voc_eval``
(detectron2/evaluation/pascal_voc_evaluation.py at commit 02b5c4e2, copied verbatim into a
scratch script outside this repository, ``PathManager`` replaced by ``open``): XML files
from the ground truth, one detection file per class written as ``process()`` writes them
(``f"{image_id} {score:.3f} {xmin + 1:.1f} {ymin + 1:.1f} {xmax:.1f} {ymax:.1f}"``),
``voc_eval`` per class and IoU 0.50:0.05:0.95, means as ``evaluate()`` takes them (×100),
classes without ground truth left out (detectron2 would divide by zero there). Printed:

    use_07_metric True  AP 33.807867322894275 AP50 46.2038850837505   AP75 37.31724274864603
    use_07_metric False AP 32.12683400164858  AP50 44.731837910070574 AP75 36.54770909320974
"""

from __future__ import annotations

import pytest

from benchmark.evaluation import evaluate_predictions
from tests.evaluation.voc_fixture import voc_fixture

DETECTRON2 = {
    "voc07": (33.807867322894275, 46.2038850837505, 37.31724274864603),
    "voc": (32.12683400164858, 44.731837910070574, 36.54770909320974),
}


@pytest.mark.parametrize("protocol", ["voc07", "voc"])
def test_default_voc_protocols_equal_detectron2(protocol: str) -> None:
    gt, preds = voc_fixture()
    got = evaluate_predictions(gt, preds, protocol)
    ap, ap50, ap75 = DETECTRON2[protocol]
    assert 100 * got["AP"] == pytest.approx(ap, abs=1e-9)
    assert 100 * got["AP50"] == pytest.approx(ap50, abs=1e-9)
    assert 100 * got["AP75"] == pytest.approx(ap75, abs=1e-9)
    assert got["per_class"]["boat"] is None  # detections, but no ground truth: skipped


@pytest.mark.parametrize("protocol", ["voc07", "voc"])
def test_unrounded_variant_differs_where_rounding_matters(protocol: str) -> None:
    """Full-precision scores and boxes change ties and near-threshold IoUs on this fixture:
    the unrounded protocol is a different number, kept under its own name."""
    gt, preds = voc_fixture()
    exact = evaluate_predictions(gt, preds, f"{protocol}_unrounded")
    assert abs(100 * exact["AP"] - DETECTRON2[protocol][0]) > 0.5
