"""Training noise: how far apart two trainings of one cell land, from the reference's seeds.

Two trainings whose floating-point arithmetic differs in its last bit (another CPU or GPU
type, another thread count) diverge over the optimisation as two seeds do, so a rerun on other
hardware is another draw from the cell's distribution of trained models. The bootstrap over
test images does not contain that spread; the reference's seeds do.

**The yardstick.** For one cell (the records of the *reference* root equal in configuration
except ``seed``: :func:`benchmark.compare.pairing.configuration` without ``seed``) and one
judged statistic (ID AP, OOD mean, mPC, rPC) with values x₁ … xₙ over n ≥ 2 seeds, with
sample SD s (n − 1 degrees of freedom), the seed-noise bound is

    b = t_{(1+level)/2, n−1} · s · √2

— the two-sided ``level`` (95%) *prediction* bound for the difference X − X′ of two
independent trainings: with X, X′ ~ N(μ, σ²) independent, X − X′ ~ N(0, 2σ²) (hence √2),
and with σ estimated by s, (X − X′) / (s·√2) follows Student's t with n − 1 degrees of
freedom (hence t rather than 1.96: three seeds give t = 4.30, two give 12.71 — few seeds can
only bound training noise loosely, and the bound says so). A prediction bound, not a
confidence interval of the mean: the question is whether *one* new training lands where
another training could, not where the mean lies.

**Pooled.** A cell with fewer than two seeds (of that statistic) borrows from the other
cells of the reference of the same family and engine that have several: the pooled SD
s_p = √(Σᵢ (nᵢ − 1) sᵢ² / Σᵢ (nᵢ − 1)) with Σᵢ (nᵢ − 1) degrees of freedom — the usual
within-group variance of a one-way layout, which assumes the seed spread is about the same
for the recipes of one family and engine. A cell with two or more seeds always uses its own.

**Combined with test-set noise.** A Δ beyond the test-set noise h (half-width of the
reference's 95% image bootstrap interval) is judged against √(h² + b²) (:func:`combined`):
where the two runs were scored on test sets whose content differs (generated data is
CPU-dependent), Δ holds both an evaluation and a training difference, independent of each
other, and the half-widths of (near-normal) independent errors add in quadrature. On the same
test images the sum is mildly conservative, and it is never below either part, so whatever is
within test-set noise is within the combined yardstick too (the verdicts nest). Without h
(no interval on this machine) b alone is the yardstick.

Seeds are counted once: where the reference holds several records of one cell and seed (two
roots merged), the first in fingerprint order stands for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmark.compare.pairing import configuration
from benchmark.report.records import Record

#: the summary keys whose training noise is measured (those the verdict judges)
STATISTICS = ("id_ap", "ood_mean", "mPC", "rPC")


@dataclass(frozen=True)
class SeedNoise:
    """The seed-noise bound of one statistic of one cell, and what it was estimated from."""

    bound: float  # b = t · s · √2: the two-trainings prediction bound
    sd: float  # s, the cell's between-seed SD (pooled where ``cells`` > 1)
    df: int  # degrees of freedom of s
    seeds: int  # seeds it was estimated from (over all pooled cells)
    cells: int  # 1: the cell's own seeds; more: pooled from that many cells
    pooled: bool

    @property
    def source(self) -> str:
        if self.pooled:
            return (f"pooled from {self.cells} cell{'s' if self.cells != 1 else ''} "
                    f"({self.seeds} seeds)")
        return f"{self.seeds} seeds of this cell"

    def to_json(self) -> dict[str, Any]:
        return {"bound": self.bound, "sd": self.sd, "df": self.df, "seeds": self.seeds,
                "cells": self.cells, "pooled": self.pooled, "source": self.source}


def combined(test: float | None, seed: float) -> float:
    """√(test² + seed²): the yardstick a Δ beyond test-set noise is judged against."""
    return math.hypot(test or 0.0, seed)


def classify(delta: float, test: float | None, seed: SeedNoise | None) -> str:
    """How one Δ compares with the yardsticks: "test" (0, or |Δ| ≤ test-set noise), "seed"
    (|Δ| ≤ √(test² + b²)), "beyond" (larger), "1 seed" (beyond test-set noise, no seed
    bound: training noise unknown) or "no interval" (neither yardstick)."""
    if delta == 0 or (test is not None and abs(delta) <= test):
        return "test"
    if seed is not None:
        return "seed" if abs(delta) <= combined(test, seed.bound) else "beyond"
    return "1 seed" if test is not None else "no interval"


def describe(bounds: Sequence[tuple[str, SeedNoise | None]]) -> str:
    """Where the bounds of (statistic label, bound) come from: ``"3 seeds of this cell"``,
    ``"pooled from 2 cells (5 seeds)"``, per statistic where they differ."""
    by_source: dict[str, list[str]] = {}
    for label, seed in bounds:
        src = (seed.source if seed is not None
               else "unknown (1 seed of this cell, none pooled in its family and engine)")
        by_source.setdefault(src, []).append(label)
    if len(by_source) == 1:
        return next(iter(by_source))
    return "; ".join(f"{', '.join(labels)}: {src}" for src, labels in by_source.items())


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (scipy, imported here: the report does not need it otherwise)."""
    from scipy.stats import t

    return float(t.ppf(p, df))


def number(v: Any) -> float | None:
    """A finite recorded value (-1 is COCO's "not computed"), else None."""
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v != -1:
        return float(v)
    return None


def _variance(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return sum((x - mean) ** 2 for x in values) / (len(values) - 1)


def cell_of(record: Record) -> str:
    """The record's cell: its configuration without the seed."""
    return configuration(record, ("seed",))


def pool_of(record: Record) -> tuple[str, str]:
    """The records a cell with one seed may borrow training noise from: family and engine."""
    spec = record.data["spec"]
    return str(spec.get("benchmark")), str(spec.get("engine"))


class SeedNoiseTable:
    """Seed-noise bounds of the cells of one (the reference) results root."""

    def __init__(self, records: Iterable[Record], level: float = 0.95,
                 statistics: Sequence[str] = STATISTICS) -> None:
        self.level = level
        self._pool: dict[str, tuple[str, str]] = {}
        by_seed: dict[str, dict[int, Record]] = {}  # cell → seed → record (one per seed)
        for r in sorted(records, key=lambda r: r.fingerprint):
            cell = cell_of(r)
            self._pool[cell] = pool_of(r)
            by_seed.setdefault(cell, {}).setdefault(int(r.data["spec"]["seed"]), r)
        # statistic → cell → the values over its seeds
        self._values: dict[str, dict[str, list[float]]] = {s: {} for s in statistics}
        for cell, seeds in by_seed.items():
            for stat in statistics:
                vals = [number((r.data.get("summary") or {}).get(stat))
                        for _, r in sorted(seeds.items())]
                self._values[stat][cell] = [v for v in vals if v is not None]

    def _bound(self, sd: float, df: int) -> float:
        return t_quantile(0.5 + self.level / 2, df) * sd * math.sqrt(2)

    def of(self, record: Record, stat: str) -> SeedNoise | None:
        """The bound for ``stat`` of the record's cell: its own seeds, else pooled from the
        cells of its family and engine; None where neither has two seeds."""
        cells = self._values.get(stat) or {}
        cell = cell_of(record)
        own = cells.get(cell) or []
        if len(own) >= 2:
            sd = math.sqrt(_variance(own))
            return SeedNoise(self._bound(sd, len(own) - 1), sd, len(own) - 1, len(own), 1,
                             False)
        pool = pool_of(record)
        groups = [v for c, v in sorted(cells.items())
                  if c != cell and len(v) >= 2 and self._pool.get(c) == pool]
        if not groups:
            return None
        df = sum(len(v) - 1 for v in groups)
        sd = math.sqrt(sum((len(v) - 1) * _variance(v) for v in groups) / df)
        return SeedNoise(self._bound(sd, df), sd, df, sum(len(v) for v in groups), len(groups),
                         True)
