"""The report's figures read: numbered markers that would overlap are moved apart (with a
leader line to their true position), legends sit outside the data, the WiSE-FT α labels are
at least 8 pt and inside the figure, and the from-scratch control gets a panel of its own in
the RGN figure instead of stretching its axis to 10⁴."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark.report import build, figures, wise_figure
from benchmark.report.figures import Point
from tests.report.test_frames import make_record, write_record
from tests.report.test_report import _options


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the drawing functions make, kept open (laid out) instead of saved."""
    figs: list[Any] = []

    def keep(fig: Any, path: Path) -> Path:
        fig.canvas.draw()
        figs.append(fig)
        return path

    monkeypatch.setattr(figures, "_save", keep)
    yield figs
    import matplotlib.pyplot as plt

    for fig in figs:
        plt.close(fig)


def _overlap(a: Any, b: Any) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _tags(fig: Any, tags: set[str]) -> list[Any]:
    r = fig.canvas.get_renderer()
    return [t.get_window_extent(r) for ax in fig.axes for t in ax.texts if t.get_text() in tags]


def test_spread_separates_overlapping_labels_deterministically() -> None:
    anchors = np.array([[100.0, 100.0], [101.0, 100.0], [100.0, 100.0], [103.0, 99.0],
                        [300.0, 300.0]])
    pos = figures.spread(anchors, 10.0, (0.0, 0.0, 400.0, 400.0))
    for i, j in combinations(range(len(pos)), 2):
        assert np.hypot(*(pos[i] - pos[j])) >= 20.0 - 1e-6
    assert np.array_equal(pos[4], anchors[4])  # a free label stays where it is
    assert np.array_equal(pos, figures.spread(anchors, 10.0, (0.0, 0.0, 400.0, 400.0)))


def test_id_vs_ood_tags_do_not_overlap(drawn: list[Any], tmp_path: Path) -> None:
    pts = [Point(f"b{i}", g, 0.298 + 0.001 * i, 0.121 + 0.0005 * i, tag=str(i + 1))
           for i, g in enumerate(["DP-FT", "Reg-FT", "Reg-FT (ewc)", "WiSE-FT", "Reg-FT (d)"])]
    pts.append(Point("far", "FT", 0.05, 0.02, tag="6"))
    figures.id_vs_ood(tmp_path / "x.png", "t", pts, fit=(1.0, -0.5))
    (fig,) = drawn
    boxes = _tags(fig, {p.tag for p in pts})
    assert len(boxes) == len(pts)
    assert not any(_overlap(a, b) for a, b in combinations(boxes, 2))
    ax = fig.axes[0]
    inside = ax.get_window_extent()
    assert all(inside.x0 <= b.x0 and b.x1 <= inside.x1 for b in boxes)  # not clipped


def test_gain_legend_is_outside_the_bars(drawn: list[Any], tmp_path: Path) -> None:
    recipes = [f"recipe {i}" for i in range(9)]
    gains = {("A", r): (0.01 * i, 0.0, 0.02 * i) for i, r in enumerate(recipes)}
    gains[("B", recipes[0])] = (0.05, 0.04, 0.06)
    figures.gain_over_baseline(tmp_path / "g.png", "t", ["A", "B"], recipes, gains)
    (fig,) = drawn
    ax, r = fig.axes[0], fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(r)
    assert not _overlap(legend, ax.get_window_extent(r))
    assert fig.get_layout_engine() is not None  # constrained layout


def test_wise_alpha_labels_are_readable_and_not_clipped(drawn: list[Any],
                                                        tmp_path: Path) -> None:
    curve = [(a, 0.22 + 0.08 * a, 0.08 + 0.05 * a) for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    wise_figure.alpha_curves(tmp_path / "w.png", "t", {"EfficientNet": curve}, "ID", "OOD")
    (fig,) = drawn
    r = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].texts if t.get_text().startswith("α")]
    assert len(labels) == 5 and all(t.get_fontsize() >= 8 for t in labels)
    whole = fig.bbox
    for t in labels:
        b = t.get_window_extent(r)
        assert whole.x0 <= b.x0 and b.x1 <= whole.x1 and whole.y0 <= b.y0 and b.y1 <= whole.y1
    legend = fig.axes[0].get_legend().get_window_extent(r)
    assert not any(_overlap(legend, t.get_window_extent(r)) for t in labels)


def test_rgn_figure_puts_the_from_scratch_control_on_its_own_axis(
        drawn: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = tmp_path / "results"
    for backbone, weights, rgn in (("efficientnet_lite0", "imagenet", 0.06),
                                   ("resnet18", "none", 27000.0)):
        for recipe, ood in (("ft", 0.20), ("dp", 0.18)):
            write_record(res, make_record(backbone=backbone, weights=weights, recipe=recipe,
                                          rgn=rgn, ood={"demo_sketch": ood}))
    report = build.build_report(_options(tmp_path, n_resamples=0))
    (job,) = [j for name, j in report.plot_jobs if name == "rgn_vs_ood_change.png"]
    job(tmp_path / "rgn.png")
    (fig,) = drawn
    main, control = fig.axes[0], fig.axes[1]
    assert main.get_xlim()[1] < 100  # the pretrained backbones' axis is not stretched
    assert control.get_xlim()[0] > 1000 > main.get_xlim()[1]
    tags = {t.get_text() for t in control.texts}
    assert tags and not tags & {t.get_text() for t in main.texts if t.get_text().isdigit()}
