"""python -m benchmark.compare A B: did results root B reproduce results root A?

    python -m benchmark.compare REFERENCE CANDIDATE [--artifacts-a DIR] [--artifacts-b DIR]
                                [--bootstrap 1000] [--seed 0] [--json]

A rerun on another cluster, with another torch version or another engine, against a
published leaderboard: the runs are matched by fingerprint, else by configuration (the pair
says what differs: versions, device, threads, CPU), and each pair is judged
(:mod:`benchmark.compare.verdict`):

  bit-identical
  reproduced within test-set noise   every |Δ| within the reference's 95% bootstrap interval
                                     over test images (half-width h)
  reproduced within seed noise       beyond h, but every |Δ| within √(h² + b²), b the 95%
                                     bound on two trainings' difference from the reference's
                                     seeds of the cell (one seed: pooled over the other cells
                                     of its family and engine)
  NOT reproduced: beyond seed noise  some |Δ| beyond √(h² + b²)
  undetermined: 1 seed, training noise unknown
                                     beyond h, and the reference has no seeds to measure
                                     training noise with (never "NOT reproduced")

Another CPU or GPU type changes a training as much as another seed does, so a rerun on other
hardware is judged against seed noise where the reference has several seeds. Paired-bootstrap
intervals of each Δ are shown where both sides' saved predictions are on this machine. Runs
present on one side only are listed. The last line but one is the summary, e.g.
"VERDICT: reproduced 13/13 (13 bit-identical, 0 within test-set noise, 0 within seed noise)",
"VERDICT: NOT reproduced — …" or "VERDICT: undetermined — …".

Exit status: 0 when every run reproduced (the first three verdicts) and none is missing on
either side; 1 otherwise, undetermined runs included (a run that cannot be judged does not
pass; the summary line and `--json`'s "status" tell "undetermined" from "NOT reproduced");
2 on bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    from benchmark.commandline import parser

    ap = parser("python -m benchmark.compare", __doc__.rsplit("\n\nExit status:", 1)[0],
                example="python -m benchmark.compare results runs/demo/results",
                exits="0 every run reproduced and none missing; 1 otherwise (undetermined "
                      "included); 2 bad input")
    ap.add_argument("reference", type=Path, help="results root A (the reference)")
    ap.add_argument("candidate", type=Path, help="results root B (the rerun)")
    ap.add_argument("--artifacts-a", type=Path,
                    help="A's artifacts root (default: artifacts/ next to A)")
    ap.add_argument("--artifacts-b", type=Path,
                    help="B's artifacts root (default: artifacts/ next to B)")
    ap.add_argument("--bootstrap", type=int, default=1000, metavar="B",
                    help="bootstrap resamples (the report's default, so its cached intervals "
                         "are reused; 0: no intervals)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed (the report's default)")
    ap.add_argument("--names", nargs=2, default=("reference", "candidate"),
                    metavar=("A", "B"), help="what to call the two roots in the output")
    ap.add_argument("--json", action="store_true", help="print the comparison as JSON")
    ap.add_argument("--across", action="append", default=[], metavar="KEY",
                    help="match runs that differ in this spec key, one of: engine (e.g. "
                         "--across engine: the same cells on the torchvision and the "
                         "detectron2 engine)")
    args = ap.parse_args(argv)
    # pandas and the report: only once the arguments parsed (--help stays instant)
    from benchmark.compare.pairing import ACROSS_KEYS
    from benchmark.compare.verdict import Root, compare_roots, comparison_json, format_comparison
    from benchmark.report.records import SMOKE_ROOT_MARK

    for key in args.across:
        if key not in ACROSS_KEYS:
            ap.error(f"argument --across: invalid choice: {key!r} (choose from "
                     f"{', '.join(ACROSS_KEYS)})")
    for root in (args.reference, args.candidate):
        if not (root / "runs").is_dir():
            print(f"error: {root}: not a results root (no runs/ directory)", file=sys.stderr)
            return 2
        if (root / SMOKE_ROOT_MARK).is_file():
            print(f"error: {root}: a smoke test's root (python -m benchmark.run --smoke): "
                  "its records are rehearsals, never results to compare", file=sys.stderr)
            return 2
    if args.bootstrap < 0:
        ap.error("--bootstrap must be >= 0")
    c = compare_roots(Root.at(args.reference, args.artifacts_a),
                      Root.at(args.candidate, args.artifacts_b),
                      n_resamples=args.bootstrap, seed=args.seed, across=args.across)
    print(comparison_json(c) if args.json else format_comparison(c, names=tuple(args.names)))
    return 0 if c.ok else 1
