"""The report's options (what ``python -m benchmark.report`` was asked for)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Options:
    results: Path
    out: Path
    baseline_recipe: str = "ft"
    n_resamples: int = 1000
    seed: int = 0
    level: float = 0.95
    exports: bool = True  # build the run × split frame for the CSV/Parquet (not for --check)
