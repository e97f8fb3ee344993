"""benchmark.evaluation.robustness: robustness summaries against values computed by hand."""

from __future__ import annotations

import math

import pytest

from benchmark.evaluation.robustness import (
    corruption_summary,
    effective_robustness,
    fit_logit_line,
    logit,
    ood_summary,
)

FIFTEEN = [
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
]


def test_published_baseline_rpc() -> None:
    # Faster R-CNN R50-FPN on COCO: P 36.3, mPC 18.2 -> rPC 18.2 / 36.3 = 0.50138 (50.1 %;
    # the paper's 50.2 % comes from unrounded P and mPC).
    ap = {(c, s): 0.182 for c in FIFTEEN for s in range(1, 6)}
    r = corruption_summary(0.363, ap, FIFTEEN)
    assert r["mPC"] == pytest.approx(0.182)
    assert r["rPC"] == pytest.approx(0.50138, abs=1e-5)
    assert 0.501 <= r["rPC"] <= 0.502
    assert r["n_conditions"] == 75 and r["complete"] is True


def test_mpc_uses_listed_available_conditions_only() -> None:
    ap = {("fog", 1): 0.1, ("fog", 2): 0.2, ("snow", 1): 0.3, ("speckle_noise", 1): 0.9}
    r = corruption_summary(0.4, ap, ["fog", "snow"], severities=[1, 2])
    # (0.1 + 0.2 + 0.3) / 3 = 0.2; ("snow", 2) missing; speckle_noise not listed.
    assert r["mPC"] == pytest.approx(0.2)
    assert r["rPC"] == pytest.approx(0.5)
    assert r["n_conditions"] == 3 and r["complete"] is False


def test_undefined_ratios_are_none() -> None:
    assert corruption_summary(0.0, {("fog", 1): 0.1}, ["fog"])["rPC"] is None
    r = corruption_summary(0.3, {}, ["fog"])
    assert r["mPC"] is None and r["rPC"] is None and r["n_conditions"] == 0


def test_ood_summary() -> None:
    assert ood_summary(0.5, {"clipart": 0.2, "comic": 0.3}) == pytest.approx(
        {"id": 0.5, "ood_mean": 0.25, "gap": 0.25}
    )
    assert ood_summary(0.5, {}) == {"id": 0.5, "ood_mean": None, "gap": None}


def test_logit_values_and_clipping() -> None:
    assert logit(0.5) == 0.0
    assert logit(0.75) == pytest.approx(math.log(3))
    # Clipped at 1e-6: log(1e-6 / (1 - 1e-6)) = -13.81551...
    assert logit(0.0) == pytest.approx(-13.815509557963773, abs=1e-9)
    assert logit(1.0) == pytest.approx(13.815509557963773, abs=1e-9)


def _p(x: float) -> float:
    """The probability whose logit is x."""
    return 1.0 / (1.0 + math.exp(-x))


def test_fit_logit_line_three_points() -> None:
    # logit(ID) = 0, 1, 2 and logit(OOD) = -1, 0.5, 1. Means 1 and 1/6;
    # Sxy = (-1)(-7/6) + 0 + (1)(5/6) = 2, Sxx = 2 -> slope 1, intercept 1/6 - 1 = -5/6.
    slope, intercept = fit_logit_line([_p(0), _p(1), _p(2)], [_p(-1), _p(0.5), _p(1)])
    assert slope == pytest.approx(1.0, abs=1e-9)
    assert intercept == pytest.approx(-5 / 6, abs=1e-9)


def test_effective_robustness() -> None:
    fit = (1.0, -5 / 6)
    # At logit(ID) = 1 the line predicts logit 1/6 -> 1 / (1 + e^(-1/6)) = 0.5415704...
    assert effective_robustness(_p(1), 0.6, fit) == pytest.approx(0.6 - 0.5415704, abs=1e-7)
    assert effective_robustness(_p(1), 0.5415704, fit) == pytest.approx(0.0, abs=1e-7)


def test_fit_needs_two_distinct_points() -> None:
    with pytest.raises(ValueError):
        fit_logit_line([0.5], [0.4])
    with pytest.raises(ValueError):
        fit_logit_line([0.5, 0.5], [0.4, 0.3])
    with pytest.raises(ValueError):
        fit_logit_line([0.5, 0.6], [0.4])
