"""Image-level bootstrap of COCO AP: intervals, paired p-values, the effective-robustness band.

A resample is a vector of per-image multiplicities; the AP of a resample comes from the
per-image matches computed once (:mod:`benchmark.evaluation.matching`). Sections: the
bootstrap (:class:`Bootstrap`, basic intervals, paired p-values); statistics over tables
(mean over seeds, OOD mean, mPC, rPC, differences); the effective-robustness band.

Everything is seeded: the same tables, seed and number of resamples give the same numbers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.evaluation.matching import MatchTable, WeightedAP
from benchmark.evaluation.robustness import fit_logit_line, logit, sigmoid


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    std: float
    n_resamples: int
    p_value: float | None = None  # two-sided, H0: statistic == 0 (paired comparisons)

    def to_json(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "std": self.std,
            "n_resamples": self.n_resamples,
            "p_value": self.p_value,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Interval:
        return cls(
            float(d["estimate"]), float(d["low"]), float(d["high"]), float(d["std"]),
            int(d["n_resamples"]), None if d.get("p_value") is None else float(d["p_value"]),
        )


APs = Mapping[str, Mapping[str, Any]]  # table name → {"AP": float or (B,) array, ...}
Statistic = Callable[[APs], Any]


def draw_counts(image_ids: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """(B, I) multiplicities of B with-replacement resamples of the images.

    The stream depends only on ``seed`` and the set of image ids, so every table evaluated on
    the same images (runs of a comparison, a clean split and its corrupted copies) sees the
    same draws, whichever statistic asks first: comparisons are paired by construction.
    """
    ids = np.sort(np.asarray(image_ids, dtype=np.int64))
    key = hashlib.sha256(ids.tobytes()).digest()[:8]
    rng = np.random.default_rng([int(seed), int.from_bytes(key, "little")])
    n = len(ids)
    out = np.empty((n_resamples, n), dtype=np.float64)
    for b in range(n_resamples):
        out[b] = np.bincount(rng.integers(0, n, n), minlength=n)
    return out


class Bootstrap:
    """Image-level bootstrap over named match tables, sharing work between statistics.

    :meth:`add` computes a table's AP on the full data and on the B resamples at once and
    keeps only those numbers (a COCO-sized table is tens of MB). A statistic is any function
    of ``{table name: {"AP", "AP50", "AP75"}}`` that works elementwise on arrays (the helpers
    below do), evaluated once on the full data (the estimate) and once on the B resamples.
    """

    def __init__(self, n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> None:
        self.n_resamples = n_resamples
        self.seed = seed
        self.level = level
        self._full: dict[str, dict[str, float]] = {}
        self._samples: dict[str, dict[str, np.ndarray]] = {}
        self._counts: dict[bytes, np.ndarray] = {}

    def add(self, name: str, table: MatchTable) -> None:
        calc = WeightedAP(table)
        ids = np.sort(table.image_ids)
        key = ids.tobytes()
        if key not in self._counts:
            self._counts[key] = draw_counts(ids, self.n_resamples, self.seed)
        counts = self._counts[key][:, np.searchsorted(ids, table.image_ids)]
        self._full[name] = calc()
        self._samples[name] = calc.batch(counts)

    def __contains__(self, name: str) -> bool:
        return name in self._full

    def interval(self, statistic: Statistic, names: Sequence[str], *, paired_null: bool = False
                 ) -> Interval:
        estimate = float(statistic({n: self._full[n] for n in names}))
        samples = np.asarray(statistic({n: self._samples[n] for n in names}), dtype=float)
        return summarize_samples(estimate, samples, level=self.level, paired_null=paired_null)


def bootstrap(
    tables: Mapping[str, MatchTable],
    statistic: Statistic,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    paired_null: bool = False,
) -> Interval:
    """Bootstrap interval of ``statistic`` over the images of ``tables`` (see Bootstrap and
    :func:`summarize_samples`)."""
    boot = Bootstrap(n_resamples, seed, level)
    for name, table in tables.items():
        boot.add(name, table)
    return boot.interval(statistic, sorted(tables), paired_null=paired_null)


def summarize_samples(
    estimate: float, samples: np.ndarray, *, level: float = 0.95, paired_null: bool = False
) -> Interval:
    """Basic (reverse-percentile) bootstrap interval ``[2θ̂ − q_hi, 2θ̂ − q_lo]``.

    AP on a resample is biased upward (the interpolated precision is a running maximum, and
    noise raises maxima), and so is AP on a finite test set relative to the population; the
    basic interval corrects for that shift where the plain percentile interval doubles it
    (simulated 95% coverage on 100-image sets: 0.91–0.93 against 0.74–0.92 for the percentile
    interval). For ``paired_null`` the two-sided p-value of "the statistic is 0" is the level
    at which this interval starts to contain 0: 2 · min(P*(θ* ≥ 2θ̂), P*(θ* ≤ 2θ̂)), with the
    +1 correction.
    """
    samples = np.atleast_1d(samples)
    finite = samples[np.isfinite(samples)]
    if len(finite) == 0 or not math.isfinite(estimate):
        nan = float("nan")
        return Interval(estimate, nan, nan, nan, len(samples), nan if paired_null else None)
    alpha = (1.0 - level) / 2.0
    q_low, q_high = np.quantile(finite, [alpha, 1.0 - alpha])
    low, high = 2.0 * estimate - q_high, 2.0 * estimate - q_low
    p = None
    if paired_null:
        b = len(finite)
        pivot = 2.0 * estimate
        below = (np.count_nonzero(finite <= pivot) + 1) / (b + 1)
        above = (np.count_nonzero(finite >= pivot) + 1) / (b + 1)
        p = float(min(1.0, 2.0 * min(below, above)))
    std = float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")
    return Interval(float(estimate), float(low), float(high), std, len(samples), p)


# ---- statistics built from per-table APs (elementwise: work on floats and on arrays) -------
def _mean(values: Sequence[Any]) -> Any:
    return np.mean(np.stack([np.asarray(v, dtype=float) for v in values]), axis=0)


def mean_of(names: Sequence[str], key: str = "AP") -> Statistic:
    """Mean AP over tables (e.g. the seeds of one row)."""
    names = list(names)
    return lambda aps: _mean([aps[n][key] for n in names])


def mean_of_groups(groups: Sequence[Sequence[str]], key: str = "AP") -> Statistic:
    """Mean over groups of the mean over each group's tables: OOD mean over domains (each a
    list of seed tables), or mPC over corruption × severity conditions."""
    groups = [list(g) for g in groups]
    return lambda aps: _mean([_mean([aps[n][key] for n in g]) for g in groups])


def ratio(num: Statistic, den: Statistic) -> Statistic:
    """num / den (rPC = mPC / P); NaN where den is 0."""

    def stat(aps: APs) -> Any:
        d = np.asarray(den(aps), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(d > 0, np.asarray(num(aps), dtype=float) / d, np.nan)

    return stat


def difference(a: Statistic, b: Statistic) -> Statistic:
    return lambda aps: np.asarray(a(aps), dtype=float) - np.asarray(b(aps), dtype=float)


# ---- effective-robustness band ------------------------------------------------------------
def er_band(
    id_aps: Sequence[float],
    ood_aps: Sequence[float],
    grid: Sequence[float],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Pointwise percentile band of the logit-line prediction at ``grid`` (ID AP values).

    The baseline points are resampled with replacement and the line refitted each time
    (:func:`benchmark.evaluation.robustness.fit_logit_line`); resamples whose ID values are
    all equal (no line) are skipped. Returns (low, high) in AP units, or None with fewer than
    3 points.
    """
    x = np.asarray(id_aps, dtype=float)
    y = np.asarray(ood_aps, dtype=float)
    if len(x) < 3:
        return None
    g = np.array([logit(float(v)) for v in grid], dtype=float)
    rng = np.random.default_rng(seed)
    preds = []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(x), len(x))
        if np.ptp(x[idx]) == 0:
            continue
        slope, intercept = fit_logit_line(list(x[idx]), list(y[idx]))
        preds.append(slope * g + intercept)
    if len(preds) < 2:
        return None
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(preds), [alpha, 1.0 - alpha], axis=0)
    to_ap = np.vectorize(sigmoid)
    return to_ap(low), to_ap(high)
