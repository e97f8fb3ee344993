"""The report: run records → BENCHMARKS.md, leaderboard CSV / Parquet / HTML and plots.

Modules, each one job (imports go down this list, never up):

* :mod:`~benchmark.report.records` — read and validate run records;
* :mod:`~benchmark.report.aggregation` — labels, variants, mean ± std per row;
* :mod:`~benchmark.report.frames` — records → pandas frames;
* :mod:`~benchmark.report.options` — what the report was asked for;
* :mod:`~benchmark.report.names` — short display names ("EfficientNet-Lite0 (IN-1k)", "DP-FT");
* :mod:`~benchmark.report.tables` — a family's ranked table (:class:`FamilyTable`);
* :mod:`~benchmark.report.cards` — the protocol cards of a family's runs and publications,
  and whether a published row is comparable (:mod:`benchmark.protocol_card`);
* :mod:`~benchmark.report.published` — published rows and RGN next to reproduced ones;
* :mod:`~benchmark.report.bootstrap` — image-level bootstrap, intervals, ER band;
* :mod:`~benchmark.report.uncertainty` — intervals of the rows from saved predictions;
* :mod:`~benchmark.report.reading` — "how to read this" and its finding, the corruption
  table, the full-spec footnote;
* :mod:`~benchmark.report.figures` — plot jobs and drawing;
* :mod:`~benchmark.report.render` — templates;
* :mod:`~benchmark.report.build` — the whole report (:func:`build_report`);
* :mod:`~benchmark.report.output` — write the outputs, ``--check``;
* :mod:`~benchmark.report.cli` — ``python -m benchmark.report``;
* :mod:`~benchmark.compare.verdict` (the compare package) — did one results root reproduce
  another (``python -m benchmark.compare``, the demo's verdict).

Families come from :mod:`benchmark.families`, metrics from
:mod:`benchmark.evaluation.summary_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmark.report`` (imported lazily: the submodules stay cheap to import)."""
    from benchmark.report.cli import main as cli_main

    return cli_main(argv)
