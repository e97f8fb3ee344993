"""What the statistics are called: a finding says what was resampled and how many seeds the
rows hold (a test-set bootstrap of one seed is no evidence about training noise, so nothing
is called "significant"), and a p-value at the resampling floor prints as a bound."""

from __future__ import annotations

from typing import Any

import pytest

from benchmark.report import build, uncertainty
from benchmark.report.bootstrap import Interval
from tests.report.test_report import _options, _table_rows, prepared  # noqa: F401


@pytest.mark.parametrize(("b", "text"), [(1000, "< 0.002"), (200, "< 0.01"),
                                         (10000, "< 0.0002"), (100, "< 0.02")])
def test_a_p_value_at_the_floor_prints_as_a_bound(b: int, text: str) -> None:
    at_floor = Interval(0.03, 0.01, 0.05, 0.01, b, 2 / (b + 1))
    assert uncertainty._p_text(at_floor) == text
    assert uncertainty.floor_text(uncertainty.p_floor(b)) == text[2:]
    above = Interval(0.03, 0.01, 0.05, 0.01, b, 0.25)
    assert uncertainty._p_text(above) == "0.250"


def test_findings_say_what_was_resampled_and_p_floors_are_bounds(
        prepared: dict[str, Any]) -> None:  # noqa: F811
    md = build.build_report(_options(prepared["tmp"], n_resamples=200)).markdown
    assert "significant" not in md.lower()
    para = next(ln for ln in md.splitlines() if ln.startswith("**How to read this.**"))
    assert "(paired 95% CI below 0 on 2; test-set bootstrap, 1 seed)" in para
    paired = _table_rows(md, "paired bootstrap, AP points")
    p_cells = [c for r in paired for c in r[4::2]]
    assert "< 0.01" in p_cells  # dp is worse than ft in every resample somewhere
    assert not {"0.010", "0.009"} & set(p_cells)  # the floor, 2/201, never as exact
    assert "`< 0.01` where no resample crossed 0" in md
    assert "say nothing about training noise" in md
