"""Benchmark: ``status`` over 10,000 cells, and sbatch accounting for 1,000 runs.

    python perf/bench_status.py [--cells 10000] [--runs 1000] [--live] [--workdir DIR]

1. Status: builds a synthetic result store of ``--cells`` cells (¼ done, ¼ failed with a log,
   ½ submitted to SLURM in arrays of 1,000) and times
   a. ``cell_states()`` in-process, answered by sacct-format text for every job (the parser and
      state logic at full size; the answer is built here);
   b. ``python -m benchmark.status --json`` in a fresh process (import + scan + one real
      ``sacct`` when installed), with ``sacct`` / ``squeue`` wrapped so every call is counted.
   Budget: < 5 s and exactly one scheduler call.
2. Submission accounting: ``plan_arrays`` for ``--runs`` runs (a third of them DP-FT cells
   whose DP parent is submitted alongside) at several MaxArraySize values: sbatch calls per
   stage = ceil(n_stage / MaxArraySize).
3. ``--live`` (needs the local test cluster up: ``python scripts/slurm_local.py start``):
   really submits ``--runs`` held cells through SlurmExecutor, counts the sbatch calls and the
   distinct array ids, times it, then cancels them.
Exits 1 when a budget or a count is off.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STATUS_BUDGET_S = 5.0
#: the body of a real run record (~20 kB): status parses and checksums every record
RECORD = json.loads(next((REPO / "results" / "runs").glob("*/record.json")).read_text())
ARRAY = 1000  # tasks per synthetic array job


def build_store(root: Path, n: int) -> list[str]:
    """``n`` synthetic cells; returns the sacct lines a scheduler would answer with."""
    from benchmark.store import Cell

    runs = root / "runs"
    logs = root / "logs"
    logs.mkdir(parents=True)
    now = time.time()
    lines = []
    sacct_states = ("RUNNING", "PENDING", "OUT_OF_MEMORY", "COMPLETED")
    for i in range(n):
        cell = runs / f"{i:016x}"
        cell.mkdir(parents=True)
        job = f"{900000 + i // ARRAY}_{i % ARRAY}"
        (cell / "spec.json").write_text(json.dumps({"grid": "bench", "spec": {"i": i}}))
        if i % 4 == 0:  # a record of realistic size, with its checksum (status checks it)
            Cell(cell.name, root).write_record({**RECORD, "fingerprint": cell.name, "i": i})
            continue
        log = logs / f"{job}_0_log.out"
        sub = {"executor": "slurm", "job_id": job, "submitted_ts": now, "log": str(log)}
        (cell / "submitted.json").write_text(json.dumps(sub))
        if i % 4 == 1:
            log.write_text("".join(f"step {k}\n" for k in range(200)) + "RuntimeError: boom\n")
            (cell / "failed.json").write_text(
                json.dumps(
                    {"error": "RuntimeError: boom", "traceback_tail": ["x"], "log": str(log)}
                )
            )
            continue
        state = sacct_states[(i // 4) % len(sacct_states)]
        if state == "OUT_OF_MEMORY":
            log.write_text("slurmstepd: error: Detected 1 oom_kill event\n")
        lines.append(f"{job}|{state}|0:0|None")
    return lines


def bench_status_in_process(root: Path, lines: list[str]) -> dict[str, Any]:
    from benchmark.status import SchedulerView, cell_states, parse_sacct

    calls = []

    def query(ids: Iterable[str]) -> SchedulerView:
        calls.append(len(list(ids)))
        return SchedulerView(jobs=parse_sacct("\n".join(lines)), source="sacct", calls=1)

    t0 = time.perf_counter()
    states = cell_states(results=root, query=query)
    dt = time.perf_counter() - t0
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    return {"seconds": round(dt, 3), "scheduler_calls": len(calls), "states": counts}


def _counting_shims(bindir: Path, counter: Path) -> None:
    """``sacct`` / ``squeue`` wrappers that log each call, then run the real command."""
    bindir.mkdir(parents=True, exist_ok=True)
    for cmd in ("sacct", "squeue"):
        real = shutil.which(cmd)
        body = f'echo {cmd} >> "{counter}"\n'
        body += f'exec "{real}" "$@"\n' if real else "exit 127\n"
        shim = bindir / cmd
        shim.write_text("#!/bin/sh\n" + body)
        shim.chmod(shim.stat().st_mode | stat.S_IEXEC)


def bench_status_cli(root: Path, work: Path) -> dict[str, Any]:
    counter = work / "scheduler_calls.txt"
    _counting_shims(work / "bin", counter)
    env = {
        **os.environ,
        "BENCH_RESULTS": str(root),
        "PATH": f"{work / 'bin'}:{os.environ.get('PATH', '')}",
    }
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.status", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"status failed: {proc.stderr}")
    states: dict[str, int] = {}
    for c in json.loads(proc.stdout):
        states[c["state"]] = states.get(c["state"], 0) + 1
    calls = counter.read_text().split() if counter.exists() else []
    return {
        "seconds": round(dt, 3),
        "scheduler_calls": len(calls),
        "which": calls,
        "real_sacct": shutil.which("sacct") is not None,
        "states": states,
    }


@dataclass(frozen=True)
class Run:
    name: str
    parent: Run | None = None

    @property
    def fingerprint(self) -> str:
        return self.name

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name}


def synthetic_runs(n: int) -> list[Run]:
    """``n`` runs; a third are DP-FT cells whose DP parent is among the others."""
    n_child = n // 3
    parents = [Run(f"dp{i}") for i in range(n_child)]
    children = [Run(f"dpft{i}", parent=parents[i]) for i in range(n_child)]
    rest = [Run(f"ft{i}") for i in range(n - 2 * n_child)]
    return [*parents, *rest, *children]


def bench_plan(n: int) -> list[dict[str, Any]]:
    from benchmark.slurm import plan_arrays

    runs = synthetic_runs(n)
    rows = []
    for limit in (1001, 500, 300, 5):
        t0 = time.perf_counter()
        stages = plan_arrays(runs, limit, lambda r: r.parent)
        dt = time.perf_counter() - t0
        sizes = [sum(map(len, st)) for st in stages]
        expected = [math.ceil(k / limit) for k in sizes]
        rows.append(
            {
                "max_array_size": limit,
                "stage_sizes": sizes,
                "sbatch_per_stage": [len(st) for st in stages],
                "expected_per_stage": expected,
                "seconds": round(dt, 4),
            }
        )
    return rows


def bench_live(n: int, work: Path) -> dict[str, Any]:
    """Submit ``n`` held toy cells on the local cluster; count sbatch calls; cancel them."""
    import dataclasses

    from benchmark.profiles import load_profile
    from benchmark.slurm import SlurmExecutor

    os.environ["BENCH_RESULTS"] = str(work / "live-results")
    os.environ["BENCH_ARTIFACTS"] = str(work / "live-artifacts")
    prof = load_profile("local")
    prof = dataclasses.replace(prof, extra_sbatch={**prof.extra_sbatch, "hold": True})
    ex = SlurmExecutor(prof, grid="bench", task=print, parent_of=lambda r: r.parent)
    runs = [Run(f"live{i}") for i in range(n)]
    t0 = time.perf_counter()
    ids = ex.submit(runs)
    dt = time.perf_counter() - t0
    arrays = sorted({i.split("_")[0] for i in ids})
    again = ex.submit(runs)  # everything is queued: nothing may go out twice
    subprocess.run(["scancel", *arrays], check=False, timeout=120)
    return {
        "runs": n,
        "max_array_size": ex.array_limit,
        "sbatch_calls": ex.sbatch_calls,
        "expected": math.ceil(n / ex.array_limit),
        "distinct_arrays": len(arrays),
        "seconds": round(dt, 2),
        "resubmitted_on_second_run": len(again),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--live", action="store_true", help="also submit --runs held cells")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-status-"))
    ok = True
    try:
        root = work / "results"
        t0 = time.perf_counter()
        lines = build_store(root, args.cells)
        print(f"built {args.cells} synthetic cells in {time.perf_counter() - t0:.1f} s")
        a = bench_status_in_process(root, lines)
        print(
            f"status in-process: {a['seconds']} s, {a['scheduler_calls']} scheduler call(s), "
            f"{a['states']}"
        )
        b = bench_status_cli(root, work)
        print(
            f"status CLI (fresh process, real sacct={b['real_sacct']}): {b['seconds']} s, "
            f"{b['scheduler_calls']} scheduler call(s) {b['which']}, {b['states']}"
        )
        for r in (a, b):
            ok &= r["seconds"] < STATUS_BUDGET_S and r["scheduler_calls"] == 1
        for row in bench_plan(args.runs):
            print(
                f"plan {args.runs} runs, MaxArraySize {row['max_array_size']:>4}: stages "
                f"{row['stage_sizes']} -> sbatch calls {row['sbatch_per_stage']} "
                f"(expected {row['expected_per_stage']}) in {row['seconds']} s"
            )
            ok &= row["sbatch_per_stage"] == row["expected_per_stage"]
        if args.live:
            c = bench_live(args.runs, work)
            print(
                f"live submit of {c['runs']} held runs, MaxArraySize {c['max_array_size']}: "
                f"{c['sbatch_calls']} sbatch calls (expected {c['expected']}), "
                f"{c['distinct_arrays']} arrays, {c['seconds']} s; resubmitted on a second "
                f"run: {c['resubmitted_on_second_run']}"
            )
            ok &= c["sbatch_calls"] == c["expected"] == c["distinct_arrays"]
            ok &= c["resubmitted_on_second_run"] == 0
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print("OK" if ok else "BUDGET OR COUNT EXCEEDED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
