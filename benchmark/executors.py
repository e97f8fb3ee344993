"""The local executor: runs cells here, optionally in parallel processes. (SLURM job arrays
are submitted by :mod:`benchmark.slurm`.)"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from benchmark.spec import RunSpec


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # fingerprint → error


def _run_one(spec: RunSpec, grid: str, progress: bool, threads: int | None) -> str:
    if threads:
        import torch

        torch.set_num_threads(threads)
    from benchmark.pipeline import run_cell

    if not progress:  # parallel workers: one line per cell instead of interleaved bars
        print(f"start  {spec.label}", file=sys.stderr, flush=True)
    run_cell(spec, grid=grid, progress=progress)
    return spec.fingerprint


def _describe(e: BaseException) -> str:
    from benchmark.errors import BenchmarkError

    return str(e) if isinstance(e, BenchmarkError) else f"{type(e).__name__}: {e}"


@dataclass
class LocalExecutor:
    """Runs cells on this machine. ``workers > 1`` uses that many processes, each with
    ``threads`` torch threads (default ``cpu_count // workers``; on the CPU the thread count
    is part of what makes a rerun bit-identical); a parent (DP) shared by several cells is
    trained once (a file lock), and a failing cell never stops the others."""

    workers: int = 1
    progress: bool = True
    threads: int | None = None  # torch threads per cell; None: all cores / workers

    def execute(self, cells: Sequence[RunSpec], grid: str) -> Outcome:
        outcome = Outcome()
        if self.workers <= 1:
            for spec in cells:
                try:
                    outcome.done.append(_run_one(spec, grid, self.progress, self.threads))
                except Exception as e:  # noqa: BLE001 - isolate the failure, report it
                    outcome.failed[spec.fingerprint] = _describe(e)
                    print(f"FAILED {spec.label}: {_describe(e)}", file=sys.stderr)
            return outcome
        threads = self.threads or max(1, (os.cpu_count() or 1) // self.workers)
        import multiprocessing as mp

        with ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_run_one, s, grid, False, threads): s for s in cells}
            for fut in as_completed(futures):
                spec = futures[fut]
                try:
                    outcome.done.append(fut.result())
                    print(f"done   {spec.label}", file=sys.stderr)
                except Exception as e:  # noqa: BLE001
                    outcome.failed[spec.fingerprint] = _describe(e)
                    print(f"FAILED {spec.label}: {_describe(e)}", file=sys.stderr)
        return outcome
