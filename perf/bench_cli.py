"""Benchmark: how long the command line makes a user wait.

    python perf/bench_cli.py [--repeat 3]

Wall time (median of ``--repeat`` fresh processes) of ``--help`` of every command and of
``run --grid demo --dry-run`` (no data, no weights: a scratch BENCH_DATA / BENCH_RESULTS /
BENCH_ARTIFACTS, so the plan is computed from the grid alone), beside the reference measured
in the same run: the interpreter starting and exiting (``python -c pass``). Targets:
``--help`` ≤ 0.5 s, the dry run ≤ 2 s. Prints one table; exits 0 (speed is
measured here, not asserted in tests).
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


def wall(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, int]:
    """Median wall seconds of ``repeat`` runs of ``argv``, and the last exit status."""
    times, rc = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rc = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        times.append(time.perf_counter() - t0)
    return statistics.median(times), rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per command (median)")
    args = ap.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        env = {**os.environ, **{k: str(Path(tmp) / k.lower()) for k in
                                ("BENCH_DATA", "BENCH_RESULTS", "BENCH_ARTIFACTS")}}
        rows = [("python -c pass (reference)", *wall([py, "-c", "pass"], env, args.repeat),
                 None)]
        for name in COMMANDS:
            rows.append((f"{name} --help",
                         *wall([py, "-m", f"benchmark.{name}", "--help"], env, args.repeat), 0.5))
        rows.append(("run --grid demo --dry-run",
                     *wall([py, "-m", "benchmark.run", "--grid", "demo", "--dry-run"], env,
                           args.repeat), 2.0))
    ref = rows[0][1]
    print(f"| command | median s ({args.repeat} runs) | over reference s | target s | exit |")
    print("|---|---|---|---|---|")
    for label, seconds, rc, target in rows:
        over = "-" if target is None else f"{seconds - ref:.2f}"
        met = "met" if target is not None and seconds <= target else "MISSED"
        verdict = "-" if target is None else f"{target:g} ({met})"
        print(f"| {label} | {seconds:.2f} | {over} | {verdict} | {rc} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
