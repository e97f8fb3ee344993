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
            pts.append(Point(r.backbone_label, r.recipe_display, float(mx), float(my),
                                   float(sx) if finite(sx) else 0.0,
                                   float(sy) if finite(sy) else 0.0))
    if pts:
        fit = fb.fit
        base_pts = list(fb.baseline_points) if fit is not None else []
        published = [Point(ref.backbone, ref.recipe, ref.values[x], ref.values[y])
                     for ref in fam.published if x in ref.values and y in ref.values]
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
    if fb.corruptions:
        panels = []
        for _, r in rows.head(HEATMAP_PANELS).iterrows():
            m = np.array([[float(r.get(f"corr/{c}/{s}|mean", np.nan)) for s in fb.severities]
                          for c in fb.corruptions])
            panels.append((f"{r['rank']}. {fb.row_label(r)}", m))
        name = f"{fam.name}_corruption_heatmap.png"
        title = f"{fam.title}: AP per corruption × severity"
        if len(rows) > HEATMAP_PANELS:
            title += f" (top {HEATMAP_PANELS} rows)"
        jobs.append((title, name, lambda p, panels=panels, title=title: corruption_heatmap(
            p, title, panels, fb.corruptions, fb.severities)))
    base = fb.options.baseline_recipe
    h = f"{fam.headline}|mean"
    bar: dict[tuple[str, str], tuple[float, float, float]] = {}
    for _, r in rows.iterrows():
        if r.recipe == base:
            continue
        b = fb.baseline_row(r)
        if b is None or not finite(r.get(h)) or not finite(b.get(h)):
            continue
        key = (r.backbone_label, r.recipe_display)
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
                pts.append(Point(f"{label} ({fb.fam.name})", fb.fam.name, float(rgn),
                                       float(a[y]) - float(b[y])))
    published = [Point(n, "published", rgn, d) for n, rgn, d in rgn_ood_change()]
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
    colors = _colors([p.group for p in pts] + [p.group for p in published])
    xs = [p.x for p in pts] + [p.x for p in published]
    for g in sorted({p.group for p in pts}):
        sel = [p for p in pts if p.group == g]
        ax.errorbar([100 * p.x for p in sel], [100 * p.y for p in sel],
                    xerr=[100 * p.xerr for p in sel], yerr=[100 * p.yerr for p in sel],
                    fmt="o", color=colors[g], label=g, capsize=2)
        if len(pts) <= MAX_LABELS:  # beyond that, labels are unreadable (and slow to draw)
            for p in sel:
                ax.annotate(p.label, (100 * p.x, 100 * p.y), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
    for p in published:
        ax.scatter([100 * p.x], [100 * p.y], marker="*", s=90, color=colors[p.group],
                   edgecolors="black", linewidths=0.5)
        ax.annotate(f"{p.label} (published)", (100 * p.x, 100 * p.y), fontsize=6,
                    xytext=(3, -8), textcoords="offset points")
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
    if pts or published:
        ax.legend(fontsize=7, loc="best")
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
    if pts:
        ax.errorbar([p.x for p in pts], [100 * p.y for p in pts],
                    yerr=[100 * p.yerr for p in pts], fmt="o", color=PALETTE[0], capsize=2,
                    label="reproduced")
    for p in pts if len(pts) <= MAX_LABELS else []:
        ax.annotate(p.label, (p.x, 100 * p.y), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    for p in pubs:
        ax.scatter([p.x], [100 * p.y], marker="*", s=90, color=PALETTE[1],
                   edgecolors="black", linewidths=0.5)
        ax.annotate(p.label, (p.x, 100 * p.y), fontsize=6, xytext=(3, -8),
                    textcoords="offset points")
    if pubs:
        ax.scatter([], [], marker="*", s=90, color=PALETTE[1], label="published (Saito et al.)")
    ax.axhline(0.0, color="black", lw=0.8)
    if pts or pubs:
        ax.set_xscale("log")
        ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("mean RGN (code definition)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def corruption_heatmap(
    path: Path,
    title: str,
    panels: Sequence[tuple[str, np.ndarray]],
    corruptions: Sequence[str],
    severities: Sequence[int],
) -> Path:
    """AP (percent) per corruption (rows) × severity (columns), one block of columns per
    leaderboard row, side by side in one image (one axes: cheap to draw)."""
    plt = _plt()
    n_sev = len(severities)
    gap = 1 if n_sev > 1 else 0
    blocks = []
    for _, m in panels:
        blocks.append(100 * np.asarray(m, dtype=float))
        if gap:
            blocks.append(np.full((len(corruptions), gap), np.nan))
    grid = np.hstack(blocks[:-1] if gap and blocks else blocks) if blocks else np.zeros((1, 1))
    finite = grid[np.isfinite(grid)]
    vmax = float(finite.max()) if finite.size else 1.0
    width = min(24.0, 3.0 + max(0.28 * grid.shape[1], 0.45 * len(panels)))
    fig, ax = plt.subplots(figsize=(width, 1.6 + 0.26 * len(corruptions)))
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("white")
    im = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, vmin=0, vmax=vmax)
    step = n_sev + gap
    centers = [i * step + (n_sev - 1) / 2 for i in range(len(panels))]
    ax.set_xticks(centers, [label.replace(" × ", "\n× ") for label, _ in panels], fontsize=6,
                  rotation=90)
    ax.set_yticks(range(len(corruptions)), list(corruptions), fontsize=7)
    ax.tick_params(axis="x", length=0)
    sev = ", ".join(str(s) for s in severities)
    ax.set_xlabel("leaderboard row; " + (f"severities {sev} left to right in each block"
                                         if n_sev > 1 else f"severity {sev}"), fontsize=7)
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
