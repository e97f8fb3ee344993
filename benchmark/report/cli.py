"""``python -m benchmark.report``: run records → BENCHMARKS.md, leaderboard CSV/Parquet/HTML, plots.

    python -m benchmark.report [--results DIR] [--out BENCHMARKS.md] [--check]
                               [--baseline-recipe ft] [--bootstrap 1000] [--seed 0]

The markdown is a pure function of the records (and, for the bootstrap intervals, of the
saved predictions or the committed interval cache): no timestamps, stable orders. ``--check``
renders it in memory and exits 1 when the file on disk differs. Plots, CSV, Parquet and HTML
are written next to the results and are not part of the check.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.errors import BenchmarkError
from benchmark.report.build import build_report
from benchmark.report.options import Options
from benchmark.report.output import check, write_outputs
from benchmark.store import results_root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=None,
                        help="results directory (default: $BENCH_RESULTS or results/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown output (default: BENCHMARKS.md next to the results dir)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the markdown differs from what the results render")
    parser.add_argument("--baseline-recipe", default="ft",
                        help="recipe whose rows define the ER fit and the paired baseline")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                        help="bootstrap resamples for the intervals (0 disables)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args(argv)
    results = Path(args.results) if args.results is not None else results_root()
    out = Path(args.out) if args.out is not None else results.resolve().parent / "BENCHMARKS.md"
    if args.bootstrap < 0:
        parser.error("--bootstrap must be >= 0")
    options = Options(results, out, args.baseline_recipe, args.bootstrap, args.seed,
                      exports=not args.check)
    report = build_report(options)
    if args.check:
        fresh, message = check(report, options)
        print(message, file=sys.stdout if fresh else sys.stderr)
        return 0 if fresh else 1
    try:
        written = write_outputs(report, options)
    except BenchmarkError as e:
        print(f"error: {e} (no report file was changed)", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files: {out}, {results / 'leaderboard.csv'} (.parquet, .html), "
          f"{results / 'plots'}/")
    for s in report.skipped:
        print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
    return 0
