"""The local executor: runs cells here, optionally in parallel processes. (SLURM job arrays
are submitted by :mod:`benchmark.slurm`.)"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TextIO

from benchmark.spec import RunSpec


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # fingerprint → error


def _worker_init(parent: int) -> None:
    """A pool worker stops with its parent: SIGTERM when the parent dies (checkpointing a
    running training first), and it exits instead of waiting for work that never comes."""
    from benchmark.runtime import die_with_parent, interrupt_on_sigterm

    die_with_parent()
    interrupt_on_sigterm()
    global _PARENT
    _PARENT = parent


_PARENT: int | None = None


def _run_one(spec: RunSpec, grid: str, progress: bool, threads: int | None) -> str:
    from benchmark.errors import Interrupted

    try:
        return _run(spec, grid, progress, threads)
    except Interrupted:
        if _PARENT is not None and os.getppid() != _PARENT:  # orphaned: nobody to report to
            os._exit(143)
        raise


def _run(spec: RunSpec, grid: str, progress: bool, threads: int | None) -> str:
    if threads:
        import torch

        torch.set_num_threads(threads)
    from benchmark.pipeline import run_cell

    run_cell(spec, grid=grid, progress=progress)
    return spec.fingerprint


def next_ready(queue: Sequence[RunSpec], running: set[str]) -> int | None:
    """The index of the first queued cell none of whose ancestors is running (started now,
    it would only wait for their lock, holding a worker); None: every one waits."""
    for i, spec in enumerate(queue):
        if not running & _ancestors(spec):
            return i
    return None


def _ancestors(spec: RunSpec) -> set[str]:
    """Fingerprints of the runs ``spec`` starts from (DP-FT → DP; a WiSE-FT mix → DP-FT, DP)."""
    from benchmark.recipes import parent_of

    out: set[str] = set()
    while (spec := parent_of(spec)) is not None:  # type: ignore[assignment]
        out.add(spec.fingerprint)
    return out


def _describe(e: BaseException) -> str:
    from benchmark.errors import BenchmarkError

    return str(e) if isinstance(e, BenchmarkError) else f"{type(e).__name__}: {e}"


def duration(seconds: float) -> str:
    """``"81 s"``, ``"4 min"``, ``"1 h 35 min"`` (minutes up to 90)."""
    s = max(0, round(seconds))
    if s < 90:
        return f"{s} s"
    if s < 90 * 60:
        return f"{round(s / 60)} min"
    h, m = divmod(round(s / 60), 60)
    return f"{h} h {m} min"


@dataclass
class Progress:
    """One plain line per started and per finished cell, the same in a terminal and in a log
    file: ``[3/6] done efficientnet_lite0 × dp (81 s) — ETA 4 min``. The bracket counts the
    grid's finished cells; the ETA is the mean duration of the cells finished in this run
    times the cells left, spread over the workers."""

    total: int  # cells of the grid
    done: int = 0  # cells finished (before this run, then counted up)
    workers: int = 1
    todo: int = 0  # cells this run executes
    file: TextIO | None = None
    seeds: bool = False  # name the seed (the cells have several)
    _durations: list[float] = field(default_factory=list)
    _started: dict[str, float] = field(default_factory=dict)
    _failures: int = 0

    def name(self, spec: RunSpec) -> str:
        seed = f" seed {spec.seed}" if self.seeds else ""
        return f"{spec.backbone.name} × {spec.recipe.label}{seed}"

    def _print(self, text: str) -> None:
        print(f"[{self.done}/{self.total}] {text}", file=self.file or sys.stderr, flush=True)

    def start(self, spec: RunSpec) -> None:
        self._started[spec.fingerprint] = time.monotonic()
        self._print(f"start {self.name(spec)}")

    def finish(self, spec: RunSpec, error: str | None = None) -> None:
        took = time.monotonic() - self._started.pop(spec.fingerprint, time.monotonic())
        self.done += 1
        if error is None:
            self._durations.append(took)
        else:
            self._failures += 1
        left = self.todo - len(self._durations) - self._failures
        eta = ""
        if left > 0 and self._durations:
            mean = sum(self._durations) / len(self._durations)
            eta = f" — ETA {duration(mean * left / max(1, min(self.workers, left)))}"
        what = "done" if error is None else "FAILED"
        tail = "" if error is None else f": {error}"
        self._print(f"{what} {self.name(spec)} ({duration(took)}){eta}{tail}")


@dataclass
class LocalExecutor:
    """Runs cells on this machine. ``workers > 1`` uses that many processes, each with
    ``threads`` torch threads (default ``cpu_count // workers``; on the CPU the thread count
    is part of what makes a rerun bit-identical); a parent (DP) shared by several cells is
    trained once (a file lock), and a failing cell never stops the others."""

    workers: int = 1
    progress: bool = True
    # every cell in a fresh process with the pinned environment (benchmark.cpu_pinning),
    # one worker included
    reproducible_cpu: bool = False
    threads: int | None = None  # torch threads per cell; None: all cores / workers
    total: int | None = None  # cells of the grid (progress lines; default: the cells run)
    finished: int = 0  # cells of the grid finished before this run

    def execute(self, cells: Sequence[RunSpec], grid: str) -> Outcome:
        from benchmark.cpu_pinning import pinned_environment

        with pinned_environment(self.reproducible_cpu):  # the pool's processes start pinned
            return self._execute(cells, grid)

    def _execute(self, cells: Sequence[RunSpec], grid: str) -> Outcome:
        outcome = Outcome()
        lines = Progress(self.total or len(cells), self.finished, max(1, self.workers),
                         len(cells), seeds=len({s.seed for s in cells}) > 1)
        if self.workers <= 1 and not self.reproducible_cpu:
            for spec in cells:
                lines.start(spec)
                try:
                    outcome.done.append(_run_one(spec, grid, self.progress, self.threads))
                    lines.finish(spec)
                except Exception as e:  # noqa: BLE001 - isolate the failure, report it
                    outcome.failed[spec.fingerprint] = _describe(e)
                    lines.finish(spec, _describe(e))
            return outcome
        threads = self.threads or max(1, (os.cpu_count() or 1) // self.workers)
        import multiprocessing as mp

        with ProcessPoolExecutor(
            self.workers,
            mp_context=mp.get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        ) as pool:
            # a cell is submitted when a worker is free, so its start line is true
            queue = list(cells)
            running: dict[Future[str], RunSpec] = {}

            def submit() -> None:
                i = next_ready(queue, {s.fingerprint for s in running.values()})
                if i is not None:
                    spec = queue.pop(i)
                    running[pool.submit(_run_one, spec, grid, False, threads)] = spec
                    lines.start(spec)

            for _ in range(min(self.workers, len(queue))):
                submit()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    spec = running.pop(fut)
                    try:
                        outcome.done.append(fut.result())
                        lines.finish(spec)
                    except Exception as e:  # noqa: BLE001
                        outcome.failed[spec.fingerprint] = _describe(e)
                        lines.finish(spec, _describe(e))
                while queue and len(running) < self.workers:
                    before = len(running)
                    submit()
                    if len(running) == before:  # every queued cell waits for a running one
                        break
        return outcome
