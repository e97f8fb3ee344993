"""The WiSE-FT sweep's figure: per backbone, the ID-vs-OOD curve through its α points (one
training, each α a leaderboard row), α = 0 (DP) to α = 1 (DP-FT), labelled with α."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.report import figures
from benchmark.report.tables import FamilyTable, finite

RECIPE = "wise_ft"
DEFAULT_ALPHA = 0.5  # benchmark.recipes.wise_ft's default
LABEL_PT = 8.0  # the α labels' font size


def _end_points(params: dict[str, Any]) -> dict[float, tuple[str, dict[str, Any]]]:
    """The cells a sweep's α = 0 and α = 1 are (DP, DP-FT: ``WiseFineTune.canonical``), as
    (recipe, params) of their rows."""
    from benchmark.recipes import get_recipe
    from benchmark.spec import RecipeSpec

    out = {}
    for alpha in (0.0, 1.0):
        spec = get_recipe(RecipeSpec.make(RECIPE, **{**params, "alpha": alpha})).canonical()
        out[alpha] = (spec.name, dict(spec.params))
    return out


def wise_curves(fb: FamilyTable) -> dict[str, list[tuple[float, float, float]]]:
    """{backbone display name: [(α, ID, OOD), …] sorted by α} over the family's rows, for
    backbones with at least two α points: the sweep's rows, and as α = 0 and α = 1 the DP and
    DP-FT rows its end points are."""
    x, y = f"{fb.fam.er_x}|mean", f"{fb.fam.er_y}|mean"
    curves: dict[str, dict[float, tuple[float, float, float]]] = {}
    if "recipe" not in fb.rows:
        return {}
    rows = [r for _, r in fb.rows.iterrows() if finite(r.get(x)) and finite(r.get(y))]

    def params_of(r: Any) -> dict[str, Any]:
        return dict(json.loads(r.get("recipe_params") or "{}"))

    for r in rows:
        if r.recipe != RECIPE:
            continue
        params = params_of(r)
        alpha = float(params.pop("alpha", DEFAULT_ALPHA))
        curve = curves.setdefault(str(r.backbone_display), {})
        curve[alpha] = (alpha, float(r[x]), float(r[y]))
        for end, (recipe, end_params) in _end_points(params).items():
            for e in rows:
                if (e.recipe == recipe and params_of(e) == end_params
                        and str(e.backbone_display) == str(r.backbone_display)):
                    curve[end] = (end, float(e[x]), float(e[y]))
    return {b: sorted(pts.values()) for b, pts in sorted(curves.items()) if len(pts) > 1}


def wise_ft_jobs(fb: FamilyTable) -> list[tuple[str, str, Callable[[Path], Any]]]:
    curves = wise_curves(fb)
    if not curves:
        return []
    title = f"{fb.fam.title}: WiSE-FT sweep, {fb.er_y_label} vs {fb.er_x_label}"
    return [(title, f"{fb.fam.name}_wise_ft_curve.png",
             lambda p: alpha_curves(p, title, curves, fb.er_x_label, fb.er_y_label))]


def alpha_curves(path: Path, title: str, curves: dict[str, list[tuple[float, float, float]]],
                 xlabel: str, ylabel: str) -> Path:
    """One line per backbone through its (ID, OOD) points in α order, each point labelled
    with its α (8 pt, above-left of the point: the curve rises to the right, so the label
    sits off the line; the axes leave room for it)."""

    fig, ax = figures._figure(figsize=(8.4, 4.8))
    for i, (backbone, pts) in enumerate(curves.items()):
        color = figures.PALETTE[i % len(figures.PALETTE)]
        xs, ys = [100 * p[1] for p in pts], [100 * p[2] for p in pts]
        ax.plot(xs, ys, "-o", color=color, ms=5, lw=1.2, label=backbone)
        for (alpha, *_), px, py in zip(pts, xs, ys, strict=True):
            ax.annotate(f"α = {alpha:g}", (px, py), textcoords="offset points", xytext=(-6, 5),
                        ha="right", va="bottom", fontsize=LABEL_PT, color=color,
                        annotation_clip=False)
    ax.margins(x=0.12, y=0.12)
    ax.set_xlabel(f"{xlabel} (%)")
    ax.set_ylabel(f"{ylabel} (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              frameon=False, title="backbone", title_fontsize=8)
    return figures._save(fig, path)
