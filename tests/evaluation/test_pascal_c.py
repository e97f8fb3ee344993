"""Pascal-C as Michaelis et al. compute it (mmdetection's robustness_eval.py,
get_voc_style_results): AP50-based P and mPC, and rPC as the mean of per-class ratios."""

from __future__ import annotations

import pytest

from benchmark.evaluation import summarize
from benchmark.spec import BackboneSpec, CorruptionSpec, RecipeSpec, RunSpec, Schedule

SPEC = RunSpec(
    family="pascal", engine="frcnn_fpn", backbone=BackboneSpec("resnet50"),
    recipe=RecipeSpec("ft"), train_split="voc0712_trainval", id_split="voc07_test",
    ood_splits=(), corruption=CorruptionSpec("voc07_test", ("fog", "snow"), (1, 3)),
    schedule=Schedule(iterations=1, batch_size=2, lr=0.01), seed=0,
)


def _split(per_class_ap50: dict[str, float | None], ap: float = 0.3) -> dict:
    voc = {"AP": ap, "AP50": 0.5, "AP75": 0.3, "protocol": "voc07",
           "per_class_ap50": per_class_ap50}
    return {"AP": ap, "AP50": 0.5, "voc": voc}


def test_per_class_rpc_known_answer() -> None:
    # classes: cat (P 0.8), dog (P 0.4), cow (P 0: dropped from the ratio), bird (no GT)
    clean = {"cat": 0.8, "dog": 0.4, "cow": 0.0, "bird": None}
    conditions = {  # name.severity → per-class AP50
        "fog.1": {"cat": 0.6, "dog": 0.3, "cow": 0.1, "bird": None},
        "fog.3": {"cat": 0.4, "dog": 0.1, "cow": 0.0, "bird": None},
        "snow.1": {"cat": 0.8, "dog": 0.2, "cow": 0.0, "bird": None},
        "snow.3": {"cat": 0.2, "dog": 0.2, "cow": 0.1, "bird": None},
    }
    metrics = {"voc07_test": _split(clean)}
    for key, pc in conditions.items():
        name, sev = key.split(".")
        metrics[f"voc07_test-C.{name}.{sev}"] = _split(pc)
    s = summarize(SPEC, metrics)
    # mPC_c: cat (0.6+0.4+0.8+0.2)/4 = 0.5; dog (0.3+0.1+0.2+0.2)/4 = 0.2; cow 0.05
    assert s["P50"] == pytest.approx((0.8 + 0.4 + 0.0) / 3)
    assert s["mPC50"] == pytest.approx((0.5 + 0.2 + 0.05) / 3)
    # mean of ratios (cat 0.5/0.8 = 0.625, dog 0.2/0.4 = 0.5), not the ratio of means (0.625)
    assert s["rPC_class"] == pytest.approx((0.625 + 0.5) / 2)
    assert s["rPC_class"] != pytest.approx(s["mPC50"] / s["P50"])


def test_no_per_class_ap_no_per_class_metrics() -> None:
    metrics = {"voc07_test": {"AP": 0.3, "AP50": 0.5}}
    for name, _, _ in SPEC.corrupted_splits:
        metrics[name] = {"AP": 0.2, "AP50": 0.4}
    s = summarize(SPEC, metrics)
    assert s["P50"] is None and s["mPC50"] is None and s["rPC_class"] is None
    assert s["rPC"] == pytest.approx(0.2 / 0.3)  # the ratio of means is still there
