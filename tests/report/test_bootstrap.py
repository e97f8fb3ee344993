"""benchmark.report.bootstrap: image-level and paired bootstrap, intervals, ER band."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.evaluation import matching as mt
from benchmark.evaluation.coco import coco_summary
from benchmark.report import bootstrap as bs
from tests.evaluation.test_matching import _random_case


def test_bootstrap_is_seeded_and_reproducible() -> None:
    gt, preds = _random_case(4)
    table = mt.match_predictions(gt, preds)
    a = bs.bootstrap({"r": table}, bs.mean_of(["r"]), n_resamples=200, seed=3)
    b = bs.bootstrap({"r": table}, bs.mean_of(["r"]), n_resamples=200, seed=3)
    c = bs.bootstrap({"r": table}, bs.mean_of(["r"]), n_resamples=200, seed=4)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.estimate == pytest.approx(coco_summary(gt, preds)["AP"], abs=1e-12)
    assert a.low < a.estimate < a.high


def test_draws_depend_only_on_the_image_set() -> None:
    ids = np.array([5, 1, 9, 3])
    assert np.array_equal(bs.draw_counts(ids, 50, 0), bs.draw_counts(ids[::-1].copy(), 50, 0))
    counts = bs.draw_counts(ids, 50, 0)
    assert (counts.sum(axis=1) == len(ids)).all()
    assert not np.array_equal(counts, bs.draw_counts(np.array([1, 3, 5, 10]), 50, 0))


def _population_table(n: int, rng: np.random.Generator, k: int = 3, sep: float = 1.5
                      ) -> mt.MatchTable:
    """A synthetic detector: each GT found with p=0.8 (score ~ N(sep, 1)) plus 2 false
    positives per image and class (score ~ N(0, 1)); one IoU threshold."""
    gt_count = rng.poisson(1.0, (n, k))
    img, cls, score, tp = [], [], [], []
    for c in range(k):
        owners = np.repeat(np.arange(n), gt_count[:, c])
        hit = owners[rng.random(len(owners)) < 0.8]
        img.append(hit)
        cls.append(np.full(len(hit), c))
        score.append(rng.normal(sep, 1.0, len(hit)))
        tp.append(np.ones(len(hit), bool))
        fp_owner = np.repeat(np.arange(n), rng.poisson(2.0, n))
        img.append(fp_owner)
        cls.append(np.full(len(fp_owner), c))
        score.append(rng.normal(0.0, 1.0, len(fp_owner)))
        tp.append(np.zeros(len(fp_owner), bool))
    return mt.MatchTable.from_arrays(np.arange(n), np.concatenate(img), np.concatenate(cls),
                                     np.concatenate(score), np.concatenate(tp)[None, :], gt_count)


@pytest.mark.parametrize("sep, n_images", [(1.5, 250), (0.5, 100)])
def test_bootstrap_intervals_cover_the_truth(sep: float, n_images: int) -> None:
    """95% intervals from finite test sets cover the population AP ~95% of the time, also for
    a weak detector on 100 images where AP's upward resampling bias is large (the plain
    percentile interval covers ~75% there)."""
    rng = np.random.default_rng(0)
    truth = mt.weighted_ap(_population_table(100_000, rng, sep=sep))["AP50"]
    trials, covered, percentile = 100, 0, 0
    for t in range(trials):
        sample = _population_table(n_images, rng, sep=sep)
        iv = bs.bootstrap({"s": sample}, bs.mean_of(["s"], "AP50"), n_resamples=300, seed=t)
        covered += iv.low <= truth <= iv.high
        # the basic interval is the percentile interval reflected around the estimate
        perc = (2 * iv.estimate - iv.high, 2 * iv.estimate - iv.low)
        percentile += perc[0] <= truth <= perc[1]
    assert 0.87 <= covered / trials <= 1.0
    assert covered >= percentile


def test_paired_bootstrap_difference_and_p_value() -> None:
    gt, preds = _random_case(6, n_img=80)
    better = [dict(p, score=p["score"] + 1.0) if p["category_id"] == 1 else p for p in preds]
    # a clearly worse detector on the same images: every box shifted by 6 px
    worse = [dict(p, bbox=[p["bbox"][0] + 6, p["bbox"][1] + 6, *p["bbox"][2:]]) for p in preds]
    boot = bs.Bootstrap(n_resamples=300, seed=0)
    boot.add("a", mt.match_predictions(gt, preds))
    boot.add("b", mt.match_predictions(gt, worse))
    boot.add("same", mt.match_predictions(gt, preds))
    boot.add("c", mt.match_predictions(gt, better))
    diff = boot.interval(bs.difference(bs.mean_of(["a"]), bs.mean_of(["b"])), ["a", "b"],
                         paired_null=True)
    ap_a = coco_summary(gt, preds)["AP"]
    ap_b = coco_summary(gt, worse)["AP"]
    assert diff.estimate == pytest.approx(ap_a - ap_b, abs=1e-12)
    assert diff.low > 0 and diff.p_value is not None and diff.p_value < 0.05
    none = boot.interval(bs.difference(bs.mean_of(["a"]), bs.mean_of(["same"])),
                         ["a", "same"], paired_null=True)
    assert none.estimate == 0.0 and none.low == 0.0 and none.high == 0.0
    assert none.p_value == 1.0


def test_statistics_over_groups() -> None:
    aps = {"a": {"AP": np.array([0.2, 0.4])}, "b": {"AP": np.array([0.4, 0.8])},
           "c": {"AP": np.array([0.1, 0.1])}}
    assert np.allclose(bs.mean_of_groups([["a", "b"], ["c"]])(aps), [0.2, 0.35])
    assert np.allclose(bs.ratio(bs.mean_of(["c"]), bs.mean_of(["a"]))(aps), [0.5, 0.25])
    zero = {"z": {"AP": 0.0}, "c": {"AP": 0.1}}
    assert math.isnan(float(bs.ratio(bs.mean_of(["c"]), bs.mean_of(["z"]))(zero)))


def test_interval_json_roundtrip() -> None:
    iv = bs.Interval(0.5, 0.4, 0.6, 0.05, 100, 0.03)
    assert bs.Interval.from_json(iv.to_json()) == iv


def test_er_band_brackets_the_fitted_line() -> None:
    from benchmark.evaluation.robustness import fit_logit_line, logit, sigmoid

    ids = [0.3, 0.4, 0.5, 0.6, 0.7]
    oods = [0.12, 0.2, 0.27, 0.36, 0.47]
    grid = np.linspace(0.3, 0.7, 9)
    band = bs.er_band(ids, oods, grid, n_resamples=400, seed=0)
    assert band is not None
    slope, intercept = fit_logit_line(ids, oods)
    line = np.array([sigmoid(slope * logit(x) + intercept) for x in grid])
    assert (band[0] <= line + 1e-12).all() and (line <= band[1] + 1e-12).all()
    assert bs.er_band(ids[:2], oods[:2], grid) is None


