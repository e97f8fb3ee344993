"""benchmark.stats: AP from precomputed matches, image-level and paired bootstrap, ER band."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark import stats as st
from benchmark.evaluate import coco_summary


def _random_case(seed: int, n_img: int = 60, n_cls: int = 4, dets: int = 25,
                 crowd: float = 0.04, difficult: float = 0.05, tie_every: int = 0
                 ) -> tuple[dict, list[dict]]:
    """Random GT (with crowd and VOC-difficult boxes) and predictions near / away from it."""
    rng = np.random.default_rng(seed)
    images = [{"id": 10 + 3 * i, "file_name": f"{i}.jpg", "width": 320, "height": 240}
              for i in range(n_img)]
    cats = [{"id": c + 1, "name": f"c{c}"} for c in range(n_cls)]
    anns: list[dict] = []
    preds: list[dict] = []
    for img in images:
        k = int(rng.poisson(3))
        cls = rng.integers(1, n_cls + 1, k)
        xy = rng.uniform(0, 200, (k, 2))
        wh = rng.uniform(8, 100, (k, 2))
        for j in range(k):
            a = {"id": len(anns) + 1, "image_id": img["id"], "category_id": int(cls[j]),
                 "bbox": [*map(float, xy[j]), *map(float, wh[j])],
                 "area": float(wh[j].prod()), "iscrowd": int(rng.random() < crowd)}
            if rng.random() < difficult:
                a["difficult"] = 1
            anns.append(a)
        for _ in range(dets):
            if k and rng.random() < 0.6:
                g = int(rng.integers(k))
                box = np.r_[xy[g], wh[g]] + rng.normal(0, 6, 4)
                c = int(cls[g]) if rng.random() < 0.85 else int(rng.integers(1, n_cls + 1))
            else:
                box = np.r_[rng.uniform(0, 200, 2), rng.uniform(8, 100, 2)]
                c = int(rng.integers(1, n_cls + 1))
            box[2:] = np.abs(box[2:]) + 1
            preds.append({"image_id": img["id"], "category_id": c,
                          "bbox": [float(v) for v in box], "score": float(rng.random())})
    if tie_every:
        for p in preds[::tie_every]:
            p["score"] = round(p["score"], 1)
    return {"images": images, "annotations": anns, "categories": cats}, preds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_from_matches_equals_cocoeval(seed: int) -> None:
    gt, preds = _random_case(seed, tie_every=3)
    mine = st.weighted_ap(st.match_predictions(gt, preds))
    ref = coco_summary(gt, preds)
    for k in ("AP", "AP50", "AP75"):
        assert mine[k] == pytest.approx(ref[k], abs=1e-12), k


def test_more_than_100_detections_per_image_and_class_are_cut_like_cocoeval() -> None:
    gt, preds = _random_case(5, n_img=4, n_cls=1, dets=160)
    assert st.weighted_ap(st.match_predictions(gt, preds))["AP"] == pytest.approx(
        coco_summary(gt, preds)["AP"], abs=1e-12)


def test_resampled_ap_equals_cocoeval_on_the_duplicated_images() -> None:
    """A weight vector is the image multiset: AP must equal COCOeval on real duplicates."""
    gt, preds = _random_case(3)
    table = st.match_predictions(gt, preds)
    weights = st.draw_counts(table.image_ids, 1, seed=7)[0].astype(int)
    assert weights.max() >= 2 and (weights == 0).any()
    images, anns, dup = [], [], []
    by_img_gt: dict[int, list] = {}
    by_img_dt: dict[int, list] = {}
    for a in gt["annotations"]:
        by_img_gt.setdefault(a["image_id"], []).append(a)
    for p in preds:
        by_img_dt.setdefault(p["image_id"], []).append(p)
    for img_id, w in zip(table.image_ids, weights, strict=True):
        for _ in range(w):
            new = len(images) + 1
            images.append({"id": new, "file_name": "x.jpg", "width": 320, "height": 240})
            for a in by_img_gt.get(img_id, []):
                anns.append({**a, "id": len(anns) + 1, "image_id": new})
            dup += [{**p, "image_id": new} for p in by_img_dt.get(img_id, [])]
    ref = coco_summary({"images": images, "annotations": anns, "categories": gt["categories"]}, dup)
    mine = st.weighted_ap(table, weights)
    for k in ("AP", "AP50", "AP75"):
        assert mine[k] == pytest.approx(ref[k], abs=1e-12), k


def _box_case() -> tuple[dict, list[dict]]:
    """One class, GT in two images; ranked detections TP, FP, TP (exact boxes: IoU 1)."""
    gt = {"images": [{"id": 1, "file_name": "a", "width": 100, "height": 100},
                     {"id": 2, "file_name": "b", "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "thing"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20],
                           "area": 400, "iscrowd": 0},
                          {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 50, 30, 30],
                           "area": 900, "iscrowd": 0}]}
    preds = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
             {"image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.8},
             {"image_id": 2, "category_id": 1, "bbox": [50, 50, 30, 30], "score": 0.7}]
    return gt, preds


def test_known_answer_by_hand() -> None:
    # precision/recall: (1, 1/2), (1/2, 1/2), (2/3, 1); interpolated precision is 1 for
    # recall ≤ 0.5 (51 of the 101 points) and 2/3 above (50 points), at every IoU (exact boxes)
    gt, preds = _box_case()
    table = st.match_predictions(gt, preds)
    expected = (51 * 1.0 + 50 * 2 / 3) / 101
    ap = st.weighted_ap(table)
    assert ap["AP"] == pytest.approx(expected, abs=1e-12)
    assert ap["AP50"] == pytest.approx(expected, abs=1e-12)
    # image 2 counted twice: ranking TP(w1), FP(w2), TP(w2); npos 3:
    # (1, 1/3), (1/3, 1/3), (3/5, 1) → 34 points at 1, 67 at 3/5
    w2 = st.weighted_ap(table, np.array([1.0, 2.0]))
    assert w2["AP"] == pytest.approx((34 + 67 * 3 / 5) / 101, abs=1e-12)
    # only image 1: a perfect detector
    assert st.weighted_ap(table, np.array([1.0, 0.0]))["AP"] == pytest.approx(1.0)
    # no ground truth left in the resample: AP undefined
    assert math.isnan(st.weighted_ap(table, np.array([0.0, 0.0]))["AP"])


def test_recall_reach_is_exact_at_the_threshold_values() -> None:
    rec = np.concatenate([st.RECALL_THRESHOLDS, np.nextafter(st.RECALL_THRESHOLDS, -1),
                          np.random.default_rng(0).random(1000), [0.0, 1.0]])
    rec = np.clip(rec, 0, 1)
    expected = np.searchsorted(st.RECALL_THRESHOLDS, rec, side="right")
    assert np.array_equal(st._recall_reach(rec), expected)


def test_no_predictions_gives_zero_ap() -> None:
    gt, _ = _box_case()
    table = st.match_predictions(gt, [])
    assert st.weighted_ap(table)["AP"] == 0.0
    assert coco_summary(gt, [])["AP"] == 0.0


def test_bootstrap_is_seeded_and_reproducible() -> None:
    gt, preds = _random_case(4)
    table = st.match_predictions(gt, preds)
    a = st.bootstrap({"r": table}, st.mean_of(["r"]), n_resamples=200, seed=3)
    b = st.bootstrap({"r": table}, st.mean_of(["r"]), n_resamples=200, seed=3)
    c = st.bootstrap({"r": table}, st.mean_of(["r"]), n_resamples=200, seed=4)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.estimate == pytest.approx(coco_summary(gt, preds)["AP"], abs=1e-12)
    assert a.low < a.estimate < a.high


def test_draws_depend_only_on_the_image_set() -> None:
    ids = np.array([5, 1, 9, 3])
    assert np.array_equal(st.draw_counts(ids, 50, 0), st.draw_counts(ids[::-1].copy(), 50, 0))
    counts = st.draw_counts(ids, 50, 0)
    assert (counts.sum(axis=1) == len(ids)).all()
    assert not np.array_equal(counts, st.draw_counts(np.array([1, 3, 5, 10]), 50, 0))


def _population_table(n: int, rng: np.random.Generator, k: int = 3, sep: float = 1.5
                      ) -> st.MatchTable:
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
    return st.MatchTable.from_arrays(np.arange(n), np.concatenate(img), np.concatenate(cls),
                                     np.concatenate(score), np.concatenate(tp)[None, :], gt_count)


@pytest.mark.parametrize("sep, n_images", [(1.5, 250), (0.5, 100)])
def test_bootstrap_intervals_cover_the_truth(sep: float, n_images: int) -> None:
    """95% intervals from finite test sets cover the population AP ~95% of the time, also for
    a weak detector on 100 images where AP's upward resampling bias is large (the plain
    percentile interval covers ~75% there)."""
    rng = np.random.default_rng(0)
    truth = st.weighted_ap(_population_table(100_000, rng, sep=sep))["AP50"]
    trials, covered, percentile = 100, 0, 0
    for t in range(trials):
        sample = _population_table(n_images, rng, sep=sep)
        iv = st.bootstrap({"s": sample}, st.mean_of(["s"], "AP50"), n_resamples=300, seed=t)
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
    boot = st.Bootstrap(n_resamples=300, seed=0)
    boot.add("a", st.match_predictions(gt, preds))
    boot.add("b", st.match_predictions(gt, worse))
    boot.add("same", st.match_predictions(gt, preds))
    boot.add("c", st.match_predictions(gt, better))
    diff = boot.interval(st.difference(st.mean_of(["a"]), st.mean_of(["b"])), ["a", "b"],
                         paired_null=True)
    ap_a = coco_summary(gt, preds)["AP"]
    ap_b = coco_summary(gt, worse)["AP"]
    assert diff.estimate == pytest.approx(ap_a - ap_b, abs=1e-12)
    assert diff.low > 0 and diff.p_value is not None and diff.p_value < 0.05
    none = boot.interval(st.difference(st.mean_of(["a"]), st.mean_of(["same"])),
                         ["a", "same"], paired_null=True)
    assert none.estimate == 0.0 and none.low == 0.0 and none.high == 0.0
    assert none.p_value == 1.0


def test_statistics_over_groups() -> None:
    aps = {"a": {"AP": np.array([0.2, 0.4])}, "b": {"AP": np.array([0.4, 0.8])},
           "c": {"AP": np.array([0.1, 0.1])}}
    assert np.allclose(st.mean_of_groups([["a", "b"], ["c"]])(aps), [0.2, 0.35])
    assert np.allclose(st.ratio(st.mean_of(["c"]), st.mean_of(["a"]))(aps), [0.5, 0.25])
    zero = {"z": {"AP": 0.0}, "c": {"AP": 0.1}}
    assert math.isnan(float(st.ratio(st.mean_of(["c"]), st.mean_of(["z"]))(zero)))


def test_interval_json_roundtrip() -> None:
    iv = st.Interval(0.5, 0.4, 0.6, 0.05, 100, 0.03)
    assert st.Interval.from_json(iv.to_json()) == iv


def test_er_band_brackets_the_fitted_line() -> None:
    from benchmark.metrics import fit_logit_line, logit, sigmoid

    ids = [0.3, 0.4, 0.5, 0.6, 0.7]
    oods = [0.12, 0.2, 0.27, 0.36, 0.47]
    grid = np.linspace(0.3, 0.7, 9)
    band = st.er_band(ids, oods, grid, n_resamples=400, seed=0)
    assert band is not None
    slope, intercept = fit_logit_line(ids, oods)
    line = np.array([sigmoid(slope * logit(x) + intercept) for x in grid])
    assert (band[0] <= line + 1e-12).all() and (line <= band[1] + 1e-12).all()
    assert st.er_band(ids[:2], oods[:2], grid) is None


def test_unknown_ids_are_rejected() -> None:
    gt, preds = _box_case()
    with pytest.raises(ValueError, match="unknown image_id 99"):
        st.match_predictions(gt, [dict(preds[0], image_id=99)])
    with pytest.raises(ValueError, match="unknown category_id 7"):
        st.match_predictions(gt, [dict(preds[0], category_id=7)])
