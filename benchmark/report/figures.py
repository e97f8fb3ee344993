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
from benchmark.report.tables import FamilyTable, finite
from benchmark.store import atomic_write_bytes

HEATMAP_PANELS = 30  # rows drawn in the corruption heatmap (best ranked first)
SCRATCH = "none"  # backbone weights of the from-scratch control


# ---- plot jobs ----------------------------------------------------------------------------------
def plot_jobs_for(fb: FamilyTable, gains: Mapping[tuple[str, str], Any], seed: int,
                  sweeps: Sequence[tuple[str, str, Callable[[Path], Any]]] = ()
                  ) -> list[tuple[str, str, Callable[[Path], Any]]]:
    """(title, file name, writer(path)) for the family's figures; ``sweeps`` (the WiSE-FT
    curve's jobs, :mod:`benchmark.report.wise_figure`) follow the ID-vs-OOD figure."""
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
    jobs.extend(sweeps)
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


def rgn_plot_job(builders: Sequence[FamilyTable]) -> tuple[str, str, Callable[[Path], Any]]:
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
            weights = runs.weights if not runs.empty and "weights" in runs else []
            scratch = any(str(w) == SCRATCH for w in weights)
            if finite(a[y]) and finite(b[y]) and finite(rgn):
                pts.append(Point(f"{a.backbone_display} ({fb.fam.name})",
                                 "control" if scratch else fb.fam.name, float(rgn),
                                 float(a[y]) - float(b[y]), tag=str(len(pts) + 1)))
    published = [Point(n, "published", rgn, d, tag=_letter(i))
                 for i, (n, rgn, d) in enumerate(rgn_ood_change())]
    return ("RGN vs OOD change under FT (FT − DP)", "rgn_vs_ood_change.png",
            lambda p: rgn_vs_ood_change(p, [q for q in pts if q.group != "control"],
                                        published,
                                        controls=[q for q in pts if q.group == "control"]))


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


MARKERS = ("o", "s", "^", "D", "v", "p", "h", "8", "<", ">", "H")  # solid: tags stay legible


def _letter(i: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[i % 26] + ("" if i < 26 else str(i // 26))


def _markers(groups: Sequence[str]) -> dict[str, str]:
    """One marker shape per group: groups stay apart in a grey-scale print."""
    return {g: MARKERS[i % len(MARKERS)] for i, g in enumerate(sorted(set(groups)))}


TAG_SIZE = 16.0  # points: the marker a tag is written in
TAG_FONT = 7.0


def _tagged(ax: Any, p: Point, x: float, y: float, *, marker: str, color: str,
            published: bool) -> None:
    """A marker with its tag inside: filled for a reproduced point, hollow (white, black
    edge) for a published one."""
    face, text = ("white", "black") if published else (color, "white")
    ax.plot([x], [y], marker=marker, markersize=TAG_SIZE, markerfacecolor=face,
            markeredgecolor="black" if published else color, markeredgewidth=1.2,
            linestyle="", zorder=4)
    ax.text(x, y, p.tag, ha="center", va="center", fontsize=TAG_FONT, color=text,
            fontweight="bold", zorder=5)


def spread(anchors: np.ndarray, radius: float, box: tuple[float, float, float, float],
           iterations: int = 300) -> np.ndarray:
    """Positions (pixels) for round labels of ``radius`` near ``anchors`` that do not
    overlap: overlapping pairs are pushed apart along the line between them (coincident
    ones along a fixed angle per index), then clamped into ``box`` (x0, y0, x1, y1).
    Deterministic: the same anchors give the same positions."""
    pos = np.array(anchors, dtype=float).reshape(-1, 2)
    x0, y0, x1, y1 = box
    for _ in range(iterations):
        moved = False
        for i in range(len(pos)):
            for j in range(i + 1, len(pos)):
                d = pos[j] - pos[i]
                dist = float(np.hypot(*d))
                if dist >= 2 * radius:
                    continue
                if dist < 1e-6:
                    angle = 2.399963 * (j + 1)  # the golden angle: coincident points fan out
                    d, dist = np.array([math.cos(angle), math.sin(angle)]), 1.0
                push = (2 * radius - dist) / 2 + 0.25
                pos[i] -= d / dist * push
                pos[j] += d / dist * push
                moved = True
        pos[:, 0] = np.clip(pos[:, 0], x0 + radius, x1 - radius)
        pos[:, 1] = np.clip(pos[:, 1], y0 + radius, y1 - radius)
        if not moved:
            break
    return pos


def _place_tags(ax: Any, items: Sequence[tuple[Point, float, float, str, str, bool]]) -> None:
    """Draw each (point, x, y, marker, colour, published) as a tagged marker where it does
    not overlap another; a moved one gets a small dot at its true position and a leader
    line to it. Call after everything else is drawn: the axes limits are frozen here."""
    if not items:
        return
    fig = ax.figure
    fig.canvas.draw()  # lay out (constrained layout): the data → pixel transform is final
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    to_px = ax.transData
    anchors = to_px.transform(np.array([[x, y] for _, x, y, *_ in items], dtype=float))
    bb = ax.get_window_extent()
    radius = 0.7 * TAG_SIZE * fig.dpi / 72  # half the distance kept between centres
    placed = to_px.inverted().transform(spread(anchors, radius, (bb.x0, bb.y0, bb.x1, bb.y1)))
    for (p, x, y, marker, color, published), (px, py), a, q in zip(
            items, placed, anchors, to_px.transform(placed), strict=True):
        if float(np.hypot(*(q - a))) > radius / 2:
            ax.plot([x, px], [y, py], color="#555", lw=0.7, zorder=3)
            ax.plot([x], [y], marker="o", markersize=3, color="black" if published else color,
                    linestyle="", zorder=3)
        _tagged(ax, p, px, py, marker=marker, color=color, published=published)


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
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0, frameon=False)


def _plt() -> Any:
    """matplotlib.pyplot on the Agg backend, imported on first use (it is slow to import and
    only the plotting process needs it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(**kw: Any) -> tuple[Any, Any]:
    """A figure with constrained layout (labels, titles and outside legends never overlap
    the axes)."""
    return _plt().subplots(layout="constrained", **kw)


def _save(fig: Any, path: Path) -> Path:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
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
    """Scatter of ID vs OOD AP (percent), logit-space baseline line and its bootstrap band.
    Each point is a numbered marker keyed in the legend; markers that would overlap are
    moved apart, with a leader line to their true position."""
    from benchmark.evaluation.robustness import logit, sigmoid

    fig, ax = _figure(figsize=(9.6, 5.2))
    pts = [p for p in points if _finite(p.x, p.y)]
    groups = [p.group for p in pts] + [p.group for p in published]
    colors, markers = _colors(groups), _markers(groups)
    xs = [p.x for p in pts] + [p.x for p in published]
    entries, items = [], []
    for p in pts:
        if p.xerr or p.yerr:
            ax.errorbar([100 * p.x], [100 * p.y], xerr=[100 * p.xerr], yerr=[100 * p.yerr],
                        fmt="none", ecolor=colors[p.group], capsize=2, zorder=2, alpha=0.8)
        items.append((p, 100 * p.x, 100 * p.y, markers[p.group], colors[p.group], False))
        entries.append((p.tag, f"{p.label} · {p.group}", markers[p.group], colors[p.group],
                        False))
    for p in published:
        items.append((p, 100 * p.x, 100 * p.y, markers[p.group], colors[p.group], True))
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
    if items:  # room for the markers at the edges
        ax.plot([x for _, x, *_ in items], [y for _, _, y, *_ in items], linestyle="",
                marker="")
        ax.margins(0.08)
    ax.set_xlabel(f"{xlabel} (%)")
    ax.set_ylabel(f"{ylabel} (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if fit is not None or band is not None:
        ax.legend(fontsize=8, loc="lower right")
        ax.add_artist(ax.get_legend())
    if len(entries) <= MAX_LABELS:
        _key(ax, entries)
    _place_tags(ax, items)
    return _save(fig, path)


def rgn_vs_ood_change(
    path: Path,
    points: Sequence[Point],
    published: Sequence[Point] = (),
    *,
    controls: Sequence[Point] = (),
    title: str = "RGN vs OOD change under FT",
    ylabel: str = "OOD AP (FT) − OOD AP (DP), points",
) -> Path:
    """The central figure of "Mind the Backbone": backbone RGN (log x) vs what FT does to
    OOD AP relative to decoder probing. From-scratch controls (no pretrained weights: their
    RGN is orders of magnitude larger) get a panel of their own, so they do not stretch the
    pretrained backbones' axis."""
    pts = [p for p in points if _finite(p.x, p.y) and p.x > 0]
    pubs = [p for p in published if _finite(p.x, p.y) and p.x > 0]
    ctrl = [p for p in controls if _finite(p.x, p.y) and p.x > 0]
    if ctrl:
        fig, (ax, cax) = _figure(figsize=(10.4, 4.6), ncols=2, sharey=True,
                                 gridspec_kw={"width_ratios": [3, 1]})
    else:
        fig, ax = _figure(figsize=(9.6, 4.6))
        cax = None
    entries, items = [], []
    for p in pts:
        if p.yerr:
            ax.errorbar([p.x], [100 * p.y], yerr=[100 * p.yerr], fmt="none", ecolor=PALETTE[0],
                        capsize=2, zorder=2)
        items.append((p, p.x, 100 * p.y, "o", PALETTE[0], False))
        entries.append((p.tag, f"{p.label} (reproduced)", "o", PALETTE[0], False))
    for p in pubs:
        items.append((p, p.x, 100 * p.y, "D", "black", True))
        entries.append((p.tag, f"{p.label} (published, Saito et al.)", "D", "black", True))
    for p in ctrl:
        entries.append((p.tag, f"{p.label} (from scratch: control panel)", "s", PALETTE[1],
                        False))
    for a in (ax, cax):
        if a is not None:
            a.axhline(0.0, color="black", lw=0.8)
            a.grid(alpha=0.3, which="both")
    if items:
        ax.set_xscale("log")
        ax.plot([x for _, x, *_ in items], [y for _, _, y, *_ in items], linestyle="")
        ax.margins(x=0.15, y=0.12)
    ax.set_xlabel("mean RGN (code definition)")
    ax.set_ylabel(ylabel)
    ax.set_title(title + (" — pretrained backbones" if ctrl else ""), fontsize=10)
    if cax is not None:
        cax.set_xscale("log")
        for p in ctrl:
            cax.plot([p.x], [100 * p.y], linestyle="")
        cax.margins(x=0.5, y=0.12)
        cax.set_xlabel("mean RGN")
        cax.set_title("from scratch (weights none):\nthe control", fontsize=9)
    if len(entries) <= MAX_LABELS:
        _key(cax if cax is not None else ax, entries)
    _place_tags(ax, items)
    if cax is not None:
        _place_tags(cax, [(p, p.x, 100 * p.y, "s", PALETTE[1], False) for p in ctrl])
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
    fig, ax = _figure(figsize=(min(24.0, 5.5 + 0.55 * len(corruptions)),
                               1.6 + 0.32 * len(rows)))
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
    fig, ax = _figure(figsize=(max(5.0, 1.4 * len(backbones) + 2) + 2.6, 4.4))
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
    if gains:  # outside the data, to the right of the axes
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                  frameon=False, title="recipe", title_fontsize=8)
    return _save(fig, path)
