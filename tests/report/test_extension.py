"""Adding a family or a metric is one table entry plus one registration line: register a
throwaway family and a throwaway metric, render a report from hand-made records of that
family, and find the family's section, the metric's column, its note and its definition."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmark.evaluation import summary_metrics as sm
from benchmark.families import FAMILIES, Family
from benchmark.report.build import build_report
from benchmark.report.options import Options
from tests.report.test_frames import make_record, write_record

WORST = """\
**worst OOD**: the lowest AP over the family's OOD splits."""


@pytest.fixture
def registered() -> Iterator[None]:
    """The throwaway entries, registered for this test only."""
    toy = Family(
        "toy", "Toy → Toy-O", "A throwaway family.", ("train", "id", "ood"),
        headline="ood_worst", er_x="id_ap", er_y="ood_worst", domains=("blue", "red"))
    worst = sm.SummaryMetric(
        "ood_worst", "worst OOD", WORST, "ood", "ap",
        compute=lambda c: min(c.ood.values()) if c.ood else None,
        show=("ood",), note="{label}: lowest OOD AP")
    with FAMILIES.registered(toy.name, toy), sm.SUMMARY_METRICS.registered(worst.key, worst):
        yield


def test_a_registered_family_and_metric_appear_in_the_report(tmp_path: Path,
                                                              registered: None) -> None:
    results = tmp_path / "results"
    for backbone, worst in (("resnet18", 0.2), ("resnet50", 0.3)):
        rec = make_record(family="toy", backbone=backbone, id_split="toy_test", corruption={},
                          ood={"toy_red": worst, "toy_blue": worst + 0.1})
        rec["summary"]["ood_worst"] = worst  # as summarize() computes it now
        write_record(results, rec)
    md = build_report(Options(results, tmp_path / "BENCHMARKS.md", n_resamples=0)).markdown
    assert "## Toy → Toy-O" in md and "ranked by **worst OOD**" in md
    header = next(ln for ln in md.splitlines() if ln.startswith("| # |"))
    cols = [c.strip() for c in header.strip("|").split(" | ")]
    # registered last: after RGN; the domains in the family's order
    assert cols[4:] == ["ID AP", "Blue AP", "Red AP", "OOD mean", "gap", "RGN", "worst OOD"]
    rows = [ln for ln in md.split("## Toy", 1)[1].splitlines() if ln.startswith("| 1 ")]
    assert rows[0].startswith("| 1 | ResNet-50 (IN-1k) | FT | 1 |")  # ranked by the headline
    assert rows[0].rstrip(" |").endswith("30.0")
    assert "worst OOD: lowest OOD AP" in md  # the column note
    definitions = md.split("## Metric definitions", 1)[1]
    assert "- **worst OOD**: the lowest AP over the family's OOD splits." in definitions


def test_a_registered_metric_is_computed_by_summarize(registered: None) -> None:
    import json

    from benchmark.evaluation import summarize
    from benchmark.spec import spec_from_json
    from benchmark.store import REPO_ROOT
    record = json.loads(next((REPO_ROOT / "results" / "runs").glob("*/record.json")).read_text())
    spec = spec_from_json(record["spec"])
    summary = summarize(spec, record["metrics"])
    assert summary["ood_worst"] == min(summary["ood"].values())
    assert {k: v for k, v in summary.items() if k != "ood_worst"} == record["summary"]
