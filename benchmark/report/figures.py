"""The report's figures: plot jobs per family (what to draw, from the rows) and the drawing
(matplotlib Agg → PNG; pure drawing, callers pass plain numbers).

PNGs are byte-for-byte deterministic for the same inputs and matplotlib version (no software
or date metadata); the freshness check nevertheless only compares BENCHMARKS.md.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.report.bootstrap import er_band
from benchmark.report.names import corruption_short, recipe_display
from benchmark.report.published import rgn_ood_change, rgn_source
from benchmark.report.tables import FamilyBuilder, finite
from benchmark.store import atomic_write_bytes

HEATMAP_PANELS = 30  # rows drawn in the corruption heatmap (best ranked first)


# ---- plot jobs ----------------------------------------------------------------------------------
def plot_jobs_for(fb: FamilyBuilder, gains: Mapping[tuple[str, str], Any], seed: int
                  ) -> list[tuple[str, str, Callable[[Path], Any]]]:
    """(title, file name, writer(path)) for the family's figures."""
    fam, rows = fb.fam, fb.rows
    jobs: list[tuple[str, str, Callable[[Path], Any]]] = []
    x, y = fam.er_x, fam.er_y
    pts = []
    for _, r in rows.iterrows():
        mx, my = r.get(f"{x}|mean"), r.get(f"{y}|mean")
        if finite(mx) and finite(my):
            sx, sy = r.get(f"{x}|std"), r.get(f"{y}|std")
            pts.append(Point(r.backbone_display, r.recipe_display, float(mx), float(my),
                             float(sx) if finite(sx) else 0.0, float(sy) if finite(sy) else 0.0,
                             tag=str(r["rank"])))
    if pts:
        fit = fb.fit
        base_pts = list(fb.baseline_points) if fit is not None else []
        published = [Point(ref.backbone, recipe_display(ref.recipe), ref.values[x],
                           ref.values[y], tag=_letter(i))
                     for i, ref in enumerate(r for r in fam.published
                                             if x in r.values and y in r.values)]
        title = f"{fam.title}: {fb.er_y_label} vs {fb.er_x_label}"

        def job(path: Path, pts: list[Any] = pts, fit: Any = fit,
                base_pts: list[tuple[float, float]] = base_pts,
                published: list[Any] = published, title: str = title) -> Any:
            band = None
            if len(base_pts) >= 3:  # the band is drawn by the (forked) plotting process
                xs = [p.x for p in pts]
                grid = np.linspace(max(1e-3, min(xs) - 0.02), min(1 - 1e-3, max(xs) + 0.02), 60)
                b = er_band([p[0] for p in base_pts], [p[1] for p in base_pts], grid, seed=seed)
                band = None if b is None else (grid, b[0], b[1])
            return id_vs_ood(path, title, pts, xlabel=fb.er_x_label, ylabel=fb.er_y_label,
                             fit=fit, band=band,
                             fit_label=f"{fb.options.baseline_recipe} fit (logit)",
                             published=published)

        jobs.append((title, f"{fam.name}_id_vs_ood.png", job))
    from benchmark.report.wise_figure import wise_ft_jobs  # it draws with this module's helpers

    jobs.extend(wise_ft_jobs(fb))
    if fb.corruptions:
        labels, values = [], []
        for _, r in rows.head(HEATMAP_PANELS).iterrows():
            labels.append(f"{r['rank']}. {fb.row_label(r)}")
            values.append(fb.corruption_means(r))
        name = f"{fam.name}_corruption_heatmap.png"
        sev = ", ".join(map(str, fb.severities))
        title = f"{fam.title}: AP per corruption (" + (
            f"mean over severities {sev})" if len(fb.severities) > 1 else f"severity {sev})")
        if len(rows) > HEATMAP_PANELS:
            title += f" (top {HEATMAP_PANELS} rows)"
        columns = [corruption_short(c) for c in fb.corruptions]
        jobs.append((title, name, lambda p, labels=labels, values=values, title=title:
                     corruption_heatmap(p, title, labels, np.array(values), columns)))
    base = fb.options.baseline_recipe
    h = f"{fam.headline}|mean"
    bar: dict[tuple[str, str], tuple[float, float, float]] = {}
    for _, r in rows.iterrows():
        if r.recipe == base:
            continue
        b = fb.baseline_row(r)
        if b is None or not finite(r.get(h)) or not finite(b.get(h)):
            continue
        key = (r.backbone_display, r.recipe_display)
        if key in gains:
            bar[key] = gains[key]
        elif key not in bar:
            g = float(r[h]) - float(b[h])
            bar[key] = (g, float("nan"), float("nan"))
    if bar:
        backbones = sorted({k[0] for k in bar})
        recipes = sorted({k[1] for k in bar})
        name = f"{fam.name}_gain_over_{base}.png"
        title = f"{fam.title}: {fb.headline_label} gain over {base}"
        jobs.append((title, name, lambda p, bar=bar, title=title: gain_over_baseline(
            p, title, backbones, recipes, bar, ylabel=f"Δ {fb.headline_label} vs {base} "
            "(points)")))
    return jobs


def rgn_plot_job(builders: Sequence[FamilyBuilder]) -> tuple[str, str, Callable[[Path], Any]]:
    pts = []
    for fb in builders:
        rows = fb.rows
        y = f"{fb.fam.er_y}|mean"
        for (engine, label), g in rows.groupby(["engine", "backbone_label"], sort=True):
            ft, dp = g[g.recipe == "ft"], g[g.recipe == "dp"]
            if ft.empty or dp.empty or y not in g:
                continue
            a, b = ft.iloc[0], dp.iloc[0]
            runs = rgn_source(fb.runs[(fb.runs.backbone_label == label)
                                       & (fb.runs.engine == engine)])
            rgn = runs["rgn"].astype(float).mean() if not runs.empty else float("nan")
            if finite(a[y]) and finite(b[y]) and finite(rgn):
                pts.append(Point(f"{a.backbone_display} ({fb.fam.name})", fb.fam.name,
                                 float(rgn), float(a[y]) - float(b[y]), tag=str(len(pts) + 1)))
    published = [Point(n, "published", rgn, d, tag=_letter(i))
                 for i, (n, rgn, d) in enumerate(rgn_ood_change())]
    return ("RGN vs OOD change under FT (FT − DP)", "rgn_vs_ood_change.png",
            lambda p: rgn_vs_ood_change(p, pts, published))


# ---- drawing ------------------------------------------------------------------------------------
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
MAX_LABELS = 30  # points annotated with their label in a scatter


@dataclass(frozen=True)
class Point:
    label: str  # e.g. the backbone
    group: str  # e.g. the recipe: one colour per group
    x: float
    y: float
    xerr: float = 0.0
    yerr: float = 0.0
    tag: str = ""  # drawn inside the marker and keyed in the legend: labels never overlap


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "p", "h", "<", ">")


def _letter(i: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[i % 26] + ("" if i < 26 else str(i // 26))


def _markers(groups: Sequence[str]) -> dict[str, str]:
    """One marker shape per group: groups stay apart in a grey-scale print."""
    return {g: MARKERS[i % len(MARKERS)] for i, g in enumerate(sorted(set(groups)))}


def _tagged(ax: Any, p: Point, x: float, y: float, *, marker: str, color: str,
            published: bool) -> None:
    """A marker with its tag inside: filled for a reproduced point, hollow (white, black
    edge) for a published one."""
    face, text = ("white", "black") if published else (color, "white")
    ax.plot([x], [y], marker=marker, markersize=13, markerfacecolor=face,
            markeredgecolor="black" if published else color, markeredgewidth=1.2,
            linestyle="", zorder=3)
    ax.text(x, y, p.tag, ha="center", va="center", fontsize=6.5, color=text,
            fontweight="bold", zorder=4)


def _key(ax: Any, entries: Sequence[tuple[str, str, str, str, bool]]) -> None:
    """The legend outside the axes: (tag, text, marker, color, published) per point."""
    from matplotlib.lines import Line2D

    handles = []
    for tag, text, marker, color, published in entries:
        handles.append(Line2D([], [], marker=marker, markersize=9, linestyle="",
                              markerfacecolor="white" if published else color,
                              markeredgecolor="black" if published else color,
                              label=f"{tag}  {text}"))
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0, frameon=False)


def _plt() -> Any:
    """matplotlib.pyplot on the Agg backend, imported on first use (it is slow to import and
    only the plotting process needs it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", pad_inches=0.15,
                metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _colors(groups: Sequence[str]) -> dict[str, str]:
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(sorted(set(groups)))}


def _finite(*vals: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in vals)


def id_vs_ood(
    path: Path,
    title: str,
    points: Sequence[Point],
    *,
    xlabel: str = "ID AP",
    ylabel: str = "OOD AP",
    fit: tuple[float, float] | None = None,
    band: tuple[Sequence[float], Sequence[float], Sequence[float]] | None = None,
    fit_label: str = "baseline fit",
    published: Sequence[Point] = (),
) -> Path:
    """Scatter of ID vs OOD AP (percent), logit-space baseline line and its bootstrap band."""
    from benchmark.evaluation.robustness import logit, sigmoid

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    pts = [p for p in points if _finite(p.x, p.y)]
    groups = [p.group for p in pts] + [p.group for p in published]
    colors, markers = _colors(groups), _markers(groups)
    xs = [p.x for p in pts] + [p.x for p in published]
    entries = []
    for p in pts:
        if p.xerr or p.yerr:
            ax.errorbar([100 * p.x], [100 * p.y], xerr=[100 * p.xerr], yerr=[100 * p.yerr],
                        fmt="none", ecolor=colors[p.group], capsize=2, zorder=2)
        _tagged(ax, p, 100 * p.x, 100 * p.y, marker=markers[p.group], color=colors[p.group],
                published=False)
        entries.append((p.tag, f"{p.label} · {p.group}", markers[p.group], colors[p.group],
                        False))
    for p in published:
        _tagged(ax, p, 100 * p.x, 100 * p.y, marker=markers[p.group], color=colors[p.group],
                published=True)
        entries.append((p.tag, f"{p.label} · {p.group} (published)", markers[p.group],
                        colors[p.group], True))
    if fit is not None and xs:
        lo, hi = min(xs), max(xs)
        pad = max(0.02, 0.1 * (hi - lo))
        grid = np.linspace(max(1e-3, lo - pad), min(1 - 1e-3, hi + pad), 100)
        line = [sigmoid(fit[0] * logit(float(v)) + fit[1]) for v in grid]
        ax.plot(100 * grid, 100 * np.asarray(line), color="black", lw=1, label=fit_label)
    if band is not None:
        gx, blo, bhi = (np.asarray(v, dtype=float) for v in band)
        ax.fill_between(100 * gx, 100 * blo, 100 * bhi, color="black", alpha=0.12, lw=0,
                        label="95% bootstrap band")
    ax.set_xlabel(f"{xlabel} (%)")
    ax.set_ylabel(f"{ylabel} (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if fit is not None or band is not None:
        ax.legend(fontsize=7, loc="lower right")
        ax.add_artist(ax.get_legend())
    if len(entries) <= MAX_LABELS:
        _key(ax, entries)
    return _save(fig, path)


def rgn_vs_ood_change(
    path: Path,
    points: Sequence[Point],
    published: Sequence[Point] = (),
    *,
    title: str = "RGN vs OOD change under FT",
    ylabel: str = "OOD AP (FT) − OOD AP (DP), points",
) -> Path:
    """The central figure of "Mind the Backbone": backbone RGN (log x) vs what FT does to
    OOD AP relative to decoder probing."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    pts = [p for p in points if _finite(p.x, p.y) and p.x > 0]
    pubs = [p for p in published if _finite(p.x, p.y) and p.x > 0]
    entries = []
    for p in pts:
        if p.yerr:
            ax.errorbar([p.x], [100 * p.y], yerr=[100 * p.yerr], fmt="none", ecolor=PALETTE[0],
                        capsize=2, zorder=2)
        _tagged(ax, p, p.x, 100 * p.y, marker="o", color=PALETTE[0], published=False)
        entries.append((p.tag, f"{p.label} (reproduced)", "o", PALETTE[0], False))
    for p in pubs:
        _tagged(ax, p, p.x, 100 * p.y, marker="D", color="black", published=True)
        entries.append((p.tag, f"{p.label} (published, Saito et al.)", "D", "black", True))
    ax.axhline(0.0, color="black", lw=0.8)
    if pts or pubs:
        ax.set_xscale("log")
    if len(entries) <= MAX_LABELS:
        _key(ax, entries)
    ax.set_xlabel("mean RGN (code definition)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def corruption_heatmap(
    path: Path,
    title: str,
    rows: Sequence[str],
    values: np.ndarray,
    corruptions: Sequence[str],
) -> Path:
    """AP (percent) per leaderboard row (labels on the y axis) × corruption (severity mean),
    the numbers printed in the cells."""
    plt = _plt()
    grid = 100 * np.asarray(values, dtype=float).reshape(len(rows), len(corruptions))
    finite = grid[np.isfinite(grid)]
    vmax = float(finite.max()) if finite.size else 1.0
    fig, ax = plt.subplots(figsize=(min(24.0, 3.5 + 0.55 * len(corruptions)),
                                    1.4 + 0.32 * len(rows)))
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, vmin=0, vmax=vmax)
    ax.set_xticks(range(len(corruptions)), list(corruptions), fontsize=7, rotation=45,
                  ha="right")
    ax.set_yticks(range(len(rows)), list(rows), fontsize=7)
    if grid.size <= 600:
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if v < 0.6 * vmax else "black")
    fig.colorbar(im, ax=ax, shrink=0.8, label="AP (%)")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def gain_over_baseline(
    path: Path,
    title: str,
    backbones: Sequence[str],
    recipes: Sequence[str],
    gains: Mapping[tuple[str, str], tuple[float, float, float]],
    *,
    ylabel: str = "gain over FT (points)",
) -> Path:
    """Grouped bars: per backbone, each recipe's (mean, low, high) gain over the baseline;
    whiskers are the paired-bootstrap interval where one was computed (else none)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(backbones) + 2), 4.2))
    colors = _colors(recipes)
    k = max(1, len(recipes))
    width = 0.8 / k
    for j, r in enumerate(recipes):
        xs, ys, lo, hi = [], [], [], []
        for i, b in enumerate(backbones):
            if (b, r) not in gains:
                continue
            m, low, high = gains[(b, r)]
            if not _finite(m):
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(100 * m)
            lo.append(100 * (m - low) if _finite(low) else 0.0)
            hi.append(100 * (high - m) if _finite(high) else 0.0)
        if xs:
            ax.bar(xs, ys, width=width, color=colors[r], label=r, yerr=[lo, hi], capsize=2)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(range(len(backbones)), list(backbones), rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    if gains:
        ax.legend(fontsize=7, loc="best")
    return _save(fig, path)
