"""The WiSE-FT sweep's figure: per backbone, the ID-vs-OOD curve through its α points (one
training, each α a leaderboard row), α = 0 (DP) to α = 1 (DP-FT), labelled with α."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.report.tables import FamilyBuilder, finite

RECIPE = "wise_ft"
DEFAULT_ALPHA = 0.5  # benchmark.recipes.wise_ft's default


def wise_curves(fb: FamilyBuilder) -> dict[str, list[tuple[float, float, float]]]:
    """{backbone display name: [(α, ID, OOD), …] sorted by α} over the family's rows, for
    backbones with at least two α points."""
    x, y = f"{fb.fam.er_x}|mean", f"{fb.fam.er_y}|mean"
    curves: dict[str, list[tuple[float, float, float]]] = {}
    rows = fb.rows[fb.rows.recipe == RECIPE] if "recipe" in fb.rows else fb.rows.iloc[:0]
    for _, r in rows.iterrows():
        if not (finite(r.get(x)) and finite(r.get(y))):
            continue
        alpha = float(json.loads(r.get("recipe_params") or "{}").get("alpha", DEFAULT_ALPHA))
        curves.setdefault(str(r.backbone_display), []).append((alpha, float(r[x]),
                                                               float(r[y])))
    return {b: sorted(pts) for b, pts in sorted(curves.items()) if len({a for a, *_ in pts}) > 1}


def wise_ft_jobs(fb: FamilyBuilder) -> list[tuple[str, str, Callable[[Path], Any]]]:
    curves = wise_curves(fb)
    if not curves:
        return []
    title = f"{fb.fam.title}: WiSE-FT sweep, {fb.er_y_label} vs {fb.er_x_label}"
    return [(title, f"{fb.fam.name}_wise_ft_curve.png",
             lambda p: alpha_curves(p, title, curves, fb.er_x_label, fb.er_y_label))]


def alpha_curves(path: Path, title: str, curves: dict[str, list[tuple[float, float, float]]],
                 xlabel: str, ylabel: str) -> Path:
    """One line per backbone through its (ID, OOD) points in α order, each point labelled."""
    from benchmark.report.figures import PALETTE, _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for i, (backbone, pts) in enumerate(curves.items()):
        color = PALETTE[i % len(PALETTE)]
        xs, ys = [100 * p[1] for p in pts], [100 * p[2] for p in pts]
        ax.plot(xs, ys, "-o", color=color, ms=4, lw=1.2, label=backbone)
        for (alpha, *_), px, py in zip(pts, xs, ys, strict=True):
            ax.annotate(f"α={alpha:g}", (px, py), textcoords="offset points", xytext=(4, 3),
                        fontsize=6, color=color)
    ax.set_xlabel(f"{xlabel} (%)")
    ax.set_ylabel(f"{ylabel} (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)
