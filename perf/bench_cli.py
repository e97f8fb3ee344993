"""Benchmark: how long the command line makes a user wait.

    python perf/bench_cli.py [--repeat 3] [--baseline REV]

Wall time (median of ``--repeat`` fresh processes) of ``--help`` of every command and of
``run --grid demo --dry-run`` (no data, no weights: a scratch BENCH_DATA / BENCH_RESULTS /
BENCH_ARTIFACTS, so the plan is computed from the grid alone), beside the reference measured
in the same run: the interpreter starting and exiting (``python -c pass``). With
``--baseline REV`` the same commands also run from a temporary git worktree of revision REV
(same interpreter, same scratch roots), interleaved with this tree's, and the table gives both
and their ratio. Targets: ``--help`` ≤ 0.5 s, the dry run ≤ 2 s. Prints one table; exits 0
(speed is measured here, not asserted in tests).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = ["run", "status", "describe", "clean", "report", "compare", "weights", "prepare"]


def wall(argv: list[str], env: dict[str, str], repeat: int, trees: list[Path]
         ) -> list[tuple[float, int]]:
    """Per tree: the median wall seconds of ``repeat`` runs of ``argv`` in it (the trees
    interleaved, so that a change in load falls on both), and the last exit status."""
    times: list[list[float]] = [[] for _ in trees]
    rcs = [0] * len(trees)
    for _ in range(repeat):
        for i, tree in enumerate(trees):
            t0 = time.perf_counter()
            rcs[i] = subprocess.run(argv, cwd=tree, env={**env, "PYTHONPATH": str(tree)},
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL).returncode
            times[i].append(time.perf_counter() - t0)
    return [(statistics.median(t), rc) for t, rc in zip(times, rcs, strict=True)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per command (median)")
    ap.add_argument("--baseline", metavar="REV",
                    help="also time the commands at git revision REV (a temporary worktree)")
    args = ap.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        env = {**os.environ, **{k: str(Path(tmp) / k.lower()) for k in
                                ("BENCH_DATA", "BENCH_RESULTS", "BENCH_ARTIFACTS")}}
        trees = [REPO]
        if args.baseline:
            trees.append(Path(tmp) / "baseline")
            subprocess.run(["git", "worktree", "add", "--detach", "-q", str(trees[1]),
                            args.baseline], cwd=REPO, check=True)
        try:
            commands = [("python -c pass (reference)", [py, "-c", "pass"], None)]
            commands += [(f"{name} --help", [py, "-m", f"benchmark.{name}", "--help"], 0.5)
                         for name in COMMANDS]
            commands.append(("run --grid demo --dry-run",
                             [py, "-m", "benchmark.run", "--grid", "demo", "--dry-run"], 2.0))
            rows = [(label, wall(cmd, env, args.repeat, trees), target)
                    for label, cmd, target in commands]
        finally:
            if args.baseline:
                subprocess.run(["git", "worktree", "remove", "--force", str(trees[1])],
                               cwd=REPO, check=False)
    head = f"| command | median s ({args.repeat} runs) | target s | exit |"
    if args.baseline:
        head += f" at {args.baseline} s | this / {args.baseline} |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for label, measured, target in rows:
        seconds, rc = measured[0]
        met = "met" if target is not None and seconds <= target else "MISSED"
        verdict = "-" if target is None else f"{target:g} ({met})"
        line = f"| {label} | {seconds:.2f} | {verdict} | {rc} |"
        if args.baseline:
            base, _ = measured[1]
            line += f" {base:.2f} | {seconds / base:.2f} |"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
