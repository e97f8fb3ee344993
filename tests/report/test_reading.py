"""The leaderboard at a glance: n once per row, short display names with the full spec one
footnote away, the compact corruption table, the generated "how to read this" finding, and
the self-contained HTML page (tooltips, row specs, no network)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from benchmark.report import build, names, output
from tests.report.test_frames import make_record, write_record
from tests.report.test_report import (  # noqa: F401  (the fixture)
    _grid,
    _options,
    _table_rows,
    prepared,
)


def test_display_names_from_the_name_tables_with_readable_fallbacks() -> None:
    assert names.backbone_display("efficientnet_lite0", "imagenet") == \
        "EfficientNet-Lite0 (IN-1k)"
    assert names.backbone_display("resnet18", "none") == "ResNet-18 (scratch)"
    assert names.backbone_display("resnet50", "swsl") == "ResNet-50 (IG SWSL)"
    assert names.backbone_display("convnext_base", "/w/convnext_base_22k_224.pth") == \
        "ConvNeXt-B (IN-22k)"
    assert names.backbone_display("my_net", "") == "my_net"
    assert [names.recipe_display(r) for r in ("ft", "dp", "dp_ft", "wise_ft", "my_recipe")] == \
        ["FT", "DP", "DP-FT", "WiSE-FT", "MY-RECIPE"]


def test_n_once_per_row_and_plus_minus_only_where_n_is_above_one(tmp_path: Path) -> None:
    res = tmp_path / "results"
    write_record(res, make_record(seed=0, id_ap=0.40))
    write_record(res, make_record(seed=1, id_ap=0.42, rgn=None))  # one run without RGN
    write_record(res, make_record(recipe="dp", id_ap=0.30))
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    header, *_ = [ln for ln in md.split("## Demo (offline", 1)[1].splitlines()
                  if ln.startswith("| # |")]
    cols = [c.strip() for c in header.strip("|").split(" | ")]
    rows = {r[2]: dict(zip(cols, r, strict=True)) for r in _table_rows(md, "## Demo (offline")}
    assert rows["FT"]["n"] == "2" and rows["DP"]["n"] == "1"
    assert rows["FT"]["ID AP"] == "41.0 ± 1.4"
    assert rows["FT"]["RGN"] == "0.300 (n=1)"  # fewer runs than the row's n have it
    assert rows["DP"]["ID AP"] == "30.0"
    assert "(n=1)" not in " ".join(rows["DP"].values())


def test_short_names_and_the_full_spec_one_footnote_away(tmp_path: Path) -> None:
    res = tmp_path / "results"
    write_record(res, make_record(backbone="efficientnet_lite0", params={"lr": 0.01}))
    write_record(res, make_record(backbone="efficientnet_lite0", params={"lr": 0.1},
                                  id_ap=0.6))
    write_record(res, make_record(backbone="resnet18", weights="none", recipe="dp_ft",
                                  params={"lr": 0.01, "dp_lr": 0.02}))
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    rows = _table_rows(md, "## Demo (offline")
    shown = {(r[1], r[2]) for r in rows}
    # two configurations of one recipe on one backbone: the parameter that differs
    assert shown == {("EfficientNet-Lite0 (IN-1k)", "FT (lr=0.01)"),
                     ("EfficientNet-Lite0 (IN-1k)", "FT (lr=0.1)"),
                     ("ResNet-18 (scratch)", "DP-FT")}
    specs = _table_rows(md, "<summary>Full specification of each row</summary>")
    by_rank = {r[0]: r for r in specs}
    dpft = next(r for r in rows if r[2] == "DP-FT")
    assert by_rank[dpft[0]][1:3] == ["`resnet18[none]`", "`dp_ft(dp_lr=0.02,lr=0.01)`"]
    assert re.fullmatch(r"`[0-9a-f]{12}`", by_rank[dpft[0]][5])


def test_how_to_read_states_the_headline_and_the_finding_from_the_numbers(
        tmp_path: Path) -> None:
    _grid(tmp_path)  # OOD mean, dp − ft: resnet18 +7.0, efficientnet_lite0 −10.0, resnet50 −25.0
    md = build.build_report(_options(tmp_path, n_resamples=0)).markdown
    para = next(ln for ln in md.splitlines() if ln.startswith("**How to read this.**"))
    assert "ranked by **OOD mean AP** (unweighted mean of the OOD APs)" in para
    assert para.endswith("**Finding:** DP beats FT on OOD mean AP for 1 of 3 backbones: -25.0 to "
                         "+7.0 points (largest on ResNet-18 (IN-1k), +7.0).")
    # with the baseline recipe swapped, the same numbers read the other way round
    md = build.build_report(_options(tmp_path, n_resamples=0, baseline_recipe="dp")).markdown
    para = next(ln for ln in md.splitlines() if ln.startswith("**How to read this.**"))
    assert "FT beats DP on OOD mean AP for 2 of 3 backbones: -7.0 to +25.0 points" in para


def test_the_finding_quotes_paired_bootstrap_intervals_where_computed(
        prepared: dict[str, Any]) -> None:  # noqa: F811
    md = build.build_report(_options(prepared["tmp"], n_resamples=200)).markdown
    para = next(ln for ln in md.splitlines() if ln.startswith("**How to read this.**"))
    # dp's boxes are noisier than ft's on both backbones: worse, and resolved as such
    m = re.search(r"\*\*Finding:\*\* DP does not beat FT on OOD mean AP on any of 2 backbones "
                  r"\(paired 95% CI below 0 on 2; test-set bootstrap, 1 seed\): (-[\d.]+) to "
                  r"(-[\d.]+) points "
                  r"\(largest on ResNet-\d+ \(IN-1k\), (-[\d.]+) \[(-[\d.]+), (-[\d.]+)\]\)\.",
                  para)
    assert m, para
    worst, best, est, low, high = map(float, m.groups())
    assert worst <= best == est and low < est < high < 0
    paired = _table_rows(md, "paired bootstrap, AP points")
    assert f"{est:+.1f} [{low:+.1f}, {high:+.1f}]" in {r[3] for r in paired}


def test_html_page_is_self_contained_with_tooltips_and_row_specs(tmp_path: Path) -> None:
    _grid(tmp_path)
    opts = _options(tmp_path, n_resamples=0)
    output.write_outputs(build.build_report(opts), opts)
    html = (tmp_path / "results" / "leaderboard.html").read_text()
    assert re.search(r'<th title="OOD mean: unweighted mean of the OOD APs" class="num">'
                     r"OOD mean</th>", html)
    assert '<tr title="resnet50[imagenet] × ft · engine frcnn_fpn_small' in html
    assert '<input type="search" class="filter" data-table="demo-leaderboard"' in html
    assert "<script>" in html and "<script src" not in html and "<link" not in html
    assert '<p class="howto"><strong>How to read this.</strong>' in html
