"""``python -m benchmark.report``: run records → BENCHMARKS.md, leaderboard CSV/Parquet/HTML, plots.

    python -m benchmark.report [--results DIR] [--out FILE] [--check]
                               [--baseline-recipe ft] [--bootstrap 1000] [--seed 0]

The markdown is a pure function of the records (and, for the bootstrap intervals, of the
saved predictions or the committed interval cache): no timestamps, stable orders. ``--check``
renders it in memory and exits 1 when the file on disk differs. Plots, CSV, Parquet and HTML
are written into the results directory and are not part of the check.

Nothing the user did not name is overwritten: a results directory that does not exist or
holds no runs is refused (exit 2) before anything is written, and the committed leaderboard
(./BENCHMARKS.md) is the default output only for the committed results (./results). Any
other results directory writes its BENCHMARKS.md next to itself, or inside itself where
"next to it" would be the committed file.

Exit status: 0 written / up to date, 1 stale (--check), 2 refused or not writable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.errors import BenchmarkError
from benchmark.report.options import Options
from benchmark.store import REPO_ROOT, list_cells, results_root

COMMITTED_RESULTS = REPO_ROOT / "results"
COMMITTED_MARKDOWN = REPO_ROOT / "BENCHMARKS.md"


def default_out(results: Path) -> Path:
    """Where BENCHMARKS.md goes when ``--out`` is not given: next to the results directory,
    except that only the committed results root renders the committed ./BENCHMARKS.md."""
    res = Path(results).resolve()
    if res == COMMITTED_RESULTS.resolve():
        return COMMITTED_MARKDOWN
    beside = res.parent / "BENCHMARKS.md"
    return res / "BENCHMARKS.md" if beside == COMMITTED_MARKDOWN.resolve() else beside


def refusal(results: Path) -> str | None:
    """Why ``results`` is not a results root to report (None: it is one)."""
    if not results.exists():
        return f"results directory {results} does not exist (a typo? --results names it)"
    if not results.is_dir():
        return f"{results} is not a directory"
    if not list_cells(results):
        return (f"{results} holds no runs ({results / 'runs'}/ has no run directories): "
                "nothing to report")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    from benchmark.commandline import parser as make_parser
    from benchmark.store.files import rooted

    doc = __doc__.rsplit("\n\nExit status:", 1)[0]
    parser = make_parser("python -m benchmark.report", doc,
                         example="python -m benchmark.report --root runs/my_grid",
                         exits="0 written / up to date; 1 stale (--check); 2 refused or not "
                               "writable")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--results", type=Path, default=None,
                       help="results directory (default: $BENCH_RESULTS or results/)")
    where.add_argument("--root", type=Path, default=None, metavar="DIR",
                       help="work root: results DIR/results, artifacts DIR/artifacts, "
                            "markdown DIR/BENCHMARKS.md (what run --root DIR wrote)")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown output (default: BENCHMARKS.md next to the results "
                             "directory; see above for the committed one)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the markdown differs from what the results render")
    parser.add_argument("--baseline-recipe", default="ft",
                        help="recipe whose rows define the ER fit and the paired baseline")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                        help="bootstrap resamples for the intervals (0 disables)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args(argv)
    if args.bootstrap < 0:
        parser.error("--bootstrap must be >= 0")
    with rooted(args.root):
        return _report(args)


def _report(args: argparse.Namespace) -> int:
    results = Path(args.results) if args.results is not None else results_root()
    why = refusal(results)
    if why is not None:
        print(f"error: {why}; nothing was written", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out is not None else default_out(results)
    options = Options(results, out, args.baseline_recipe, args.bootstrap, args.seed,
                      exports=not args.check)
    from benchmark.report.build import build_report  # pandas, numpy: after the checks
    from benchmark.report.output import check, write_outputs

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
