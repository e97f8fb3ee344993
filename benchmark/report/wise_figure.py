"""The sweep figures (WiSE-FT's α curve): per backbone, the ID-vs-OOD curve through the
values of a recipe's sweep parameter (one training, each value a leaderboard row), from the
cell its range's low end is (WiSE-FT: α = 0, DP) to the one its high end is (α = 1, DP-FT),
each point labelled with its value. Which recipes sweep, which parameter, its default and
its ends are the recipe's own (:attr:`benchmark.recipes.Recipe.SWEEP`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.report import figures
from benchmark.report.names import recipe_display
from benchmark.report.tables import FamilyTable, finite

LABEL_PT = 8.0  # the value labels' font size
#: how a sweep parameter is written on its points (others by name)
SYMBOLS = {"alpha": "α"}


def sweeps() -> dict[str, tuple[str, float, tuple[float, float]]]:
    """{recipe: (its sweep parameter, that parameter's default, (low end, high end))} of
    every registered recipe that declares a sweep, in registration order."""
    from benchmark.recipes import RECIPES

    out = {}
    for name in RECIPES:
        cls = RECIPES.get(name)
        if cls.SWEEP is not None:
            low, high, _ = cls.RANGES[cls.SWEEP]
            out[name] = (cls.SWEEP, float(cls.PARAMS[cls.SWEEP]), (float(low), float(high)))
    return out


def _end_points(recipe: str, param: str, ends: tuple[float, float], params: dict[str, Any]
                ) -> dict[float, tuple[str, dict[str, Any]]]:
    """The cells a sweep's ends are (WiSE-FT: DP and DP-FT, ``WiseFineTune.canonical``), as
    (recipe, params) of their rows."""
    from benchmark.recipes import get_recipe
    from benchmark.spec import RecipeSpec

    out = {}
    for end in ends:
        spec = get_recipe(RecipeSpec.make(recipe, **{**params, param: end})).canonical()
        out[end] = (spec.name, dict(spec.params))
    return out


def sweep_curves(fb: FamilyTable, recipe: str) -> dict[str, list[tuple[float, float, float]]]:
    """{backbone display name: [(value, ID, OOD), …] sorted by value} over the family's rows
    of the sweep recipe ``recipe``, for backbones with at least two points: the sweep's rows,
    and at its ends the rows of the cells they are."""
    param, default, ends = sweeps()[recipe]
    x, y = f"{fb.fam.er_x}|mean", f"{fb.fam.er_y}|mean"
    curves: dict[str, dict[float, tuple[float, float, float]]] = {}
    if "recipe" not in fb.rows:
        return {}
    rows = [r for _, r in fb.rows.iterrows() if finite(r.get(x)) and finite(r.get(y))]

    def params_of(r: Any) -> dict[str, Any]:
        return dict(json.loads(r.get("recipe_params") or "{}"))

    for r in rows:
        if r.recipe != recipe:
            continue
        params = params_of(r)
        value = float(params.pop(param, default))
        curve = curves.setdefault(str(r.backbone_display), {})
        curve[value] = (value, float(r[x]), float(r[y]))
        for end, (end_recipe, end_params) in _end_points(recipe, param, ends, params).items():
            for e in rows:
                if (e.recipe == end_recipe and params_of(e) == end_params
                        and str(e.backbone_display) == str(r.backbone_display)):
                    curve[end] = (end, float(e[x]), float(e[y]))
    return {b: sorted(pts.values()) for b, pts in sorted(curves.items()) if len(pts) > 1}


def wise_ft_jobs(fb: FamilyTable) -> list[tuple[str, str, Callable[[Path], Any]]]:
    """(title, file name, draw) of each sweep recipe's figure that has a curve."""
    jobs = []
    for recipe, (param, _, _) in sweeps().items():
        curves = sweep_curves(fb, recipe)
        if not curves:
            continue
        title = (f"{fb.fam.title}: {recipe_display(recipe)} sweep, {fb.er_y_label} vs "
                 f"{fb.er_x_label}")
        symbol = SYMBOLS.get(param, param)
        jobs.append((title, f"{fb.fam.name}_{recipe}_curve.png",
                     lambda p, t=title, c=curves, s=symbol: alpha_curves(
                         p, t, c, fb.er_x_label, fb.er_y_label, symbol=s)))
    return jobs


def alpha_curves(path: Path, title: str, curves: dict[str, list[tuple[float, float, float]]],
                 xlabel: str, ylabel: str, symbol: str = "α") -> Path:
    """One line per backbone through its (ID, OOD) points in the sweep's order, each point
    labelled with its value (``symbol = value``, 8 pt, above-left of the point: the curve
    rises to the right, so the label sits off the line; the axes leave room for it)."""

    fig, ax = figures._figure(figsize=(8.4, 4.8))
    for i, (backbone, pts) in enumerate(curves.items()):
        color = figures.PALETTE[i % len(figures.PALETTE)]
        xs, ys = [100 * p[1] for p in pts], [100 * p[2] for p in pts]
        ax.plot(xs, ys, "-o", color=color, ms=5, lw=1.2, label=backbone)
        for (value, *_), px, py in zip(pts, xs, ys, strict=True):
            ax.annotate(f"{symbol} = {value:g}", (px, py), textcoords="offset points",
                        xytext=(-6, 5),
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
