"""Stages of one cell, in order: train (the training stages it needs), predict every eval
split (:mod:`benchmark.inference`), score the predictions, write the record
(:func:`benchmark.evaluation.record.make_record`).

Every stage is idempotent (its output present → skipped) and atomic (temp file + rename),
so a killed cell leaves only a resumable checkpoint and rerunning continues it. Where the
files live is the store's business (:class:`benchmark.store.Cell`,
:class:`benchmark.store.TrainingDir`).
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from benchmark.data.labels import LabelMap
from benchmark.data.split import ResolvedSplit, load_split, resolve_split
from benchmark.errors import BenchmarkError
from benchmark.evaluation.record import make_record
from benchmark.inference import predict_splits
from benchmark.recipes import get_recipe
from benchmark.recipes.base import stages
from benchmark.runtime import loader_workers, world
from benchmark.spec import RunSpec
from benchmark.store import Cell, EvaluationDir, TrainingDir, file_lock, remove_stray_temp_files

#: How long a cell waits for another process holding a lock it needs — the training of the
#: same run (e.g. a shared DP parent), the same cell run elsewhere — before giving up with
#: an error; $BENCH_LOCK_TIMEOUT_S overrides.
LOCK_TIMEOUT_S = 7 * 24 * 3600.0
#: set to "1" by a smoke test (``python -m benchmark.run --smoke``): its records carry
#: ``"smoke": true`` and are never counted as results (report, compare, status)
SMOKE_ENV = "BENCH_SMOKE"


def _bounded_lock(path: Path, timeout_s: float | None) -> contextlib.AbstractContextManager:
    """An exclusive file lock: a bounded wait (:data:`LOCK_TIMEOUT_S`), then an error naming
    the holder."""
    if timeout_s is None:
        timeout_s = float(os.environ.get("BENCH_LOCK_TIMEOUT_S", LOCK_TIMEOUT_S))
    return file_lock(path, timeout_s, poll_s=1.0)


def training_lock(path: Path, timeout_s: float | None = None) -> contextlib.AbstractContextManager:
    """Guards one stage's weights (``TrainingDir.lock``): concurrent processes never train
    (or mix) the same run twice — a cell that needs a training another process runs waits
    for its final checkpoint."""
    return _bounded_lock(path, timeout_s)


def cell_lock(path: Path, timeout_s: float | None = None) -> contextlib.AbstractContextManager:
    """Guards one cell (``Cell.lock``), from its record check to its record write: a second
    process asked for the same cell waits for the first and returns its record."""
    return _bounded_lock(path, timeout_s)


class WorkClock:
    """Wall time of a cell's own work: the time spent waiting for another process (a shared
    parent training, the same cell run elsewhere) is left out of ``wall_time_s``."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.waited = 0.0

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.waited += time.monotonic() - t0

    def work_seconds(self) -> float:
        return time.monotonic() - self.start - self.waited


# ---------------------------------------------------------------------------------- train
def train_stage(spec: RunSpec, *, progress: bool = True, clock: WorkClock | None = None) -> Path:
    """``spec``'s final weights, returning their path: every stage they come from
    (:func:`benchmark.recipes.base.stages`) that they need and that has no final weights yet
    runs first, in order — a training reads the final weights of the stage before it; a
    mixing stage (a recipe that trains nothing) those and the weights that stage started
    from (:func:`mix_stage`)."""
    chain = stages(spec)
    needed, finals = {len(chain) - 1}, {}
    for i in reversed(range(len(chain))):  # newest first: present weights end the walk
        if i in needed:
            finals[i] = _final_weights(chain[i])
            if finals[i] is None:
                needed.update(_reads(chain, i))
    for i in sorted(needed):
        if finals[i] is None:
            finals[i] = _run_stage(chain, i, finals, progress=progress, clock=clock)
    return finals[len(chain) - 1]


def _reads(chain: list[RunSpec], i: int) -> list[int]:
    """The stages whose final weights stage ``i`` of ``chain`` reads: the one before it, and
    for a mixing stage also the one before that (the weights its parent started from)."""
    back = 1 if get_recipe(chain[i].recipe).trains else 2
    return [j for j in range(i - back, i) if j >= 0]


def _final_weights(spec: RunSpec) -> Path | None:
    """The stage's final checkpoint when it is there and intact (a damaged one is set aside:
    the stage runs again)."""
    from benchmark.training import checkpoint

    out = TrainingDir(spec.train_fingerprint)
    if out.final.is_file() and not checkpoint.is_intact(out.final):
        checkpoint.set_aside(out.final, "damaged final checkpoint; training again")
    return out.final if out.final.is_file() else None


def _run_stage(chain: list[RunSpec], i: int, finals: dict[int, Path | None], *,
               progress: bool, clock: WorkClock | None) -> Path:
    """Stage ``i`` of ``chain``, its inputs' final weights in ``finals``: a training
    (:class:`benchmark.training.Trainer`) or a mixing stage, under the stage's lock."""
    from benchmark.training import Trainer

    spec = chain[i]
    init_from = finals[i - 1] if i > 0 else None
    trains = get_recipe(spec.recipe).trains
    if not trains and init_from is None:
        raise BenchmarkError(f"recipe {spec.recipe.name!r} trains nothing: it needs a parent")
    out = TrainingDir(spec.train_fingerprint)
    if world()[0] != 0:  # a DDP worker: rank 0 holds the lock and writes the outputs
        if not trains:
            return out.final  # a mix is rank 0's alone
        return Trainer(spec, load_split(spec.train_split), out).run(init_from, progress=False)
    with contextlib.ExitStack() as stack:
        with clock.waiting() if clock is not None else contextlib.nullcontext():
            stack.enter_context(training_lock(out.lock))
        if out.final.is_file():
            return out.final
        remove_stray_temp_files(out.dir, recursive=False)  # of a write killed mid-way
        if not trains:
            assert init_from is not None
            return mix_stage(spec, chain[i - 1], init_from, finals[i - 2] if i > 1 else None)
        trainer = Trainer(spec, load_split(spec.train_split), out)
        return trainer.run(init_from=init_from, progress=progress)


def mix_stage(spec: RunSpec, parent: RunSpec, parent_final: Path,
              parent_start: Path | None) -> Path:
    """The weights of a stage that trains nothing (:attr:`Recipe.trains` False, WiSE-FT):
    :meth:`Recipe.finalize` applied to ``parent``'s final weights, with the weights
    ``parent`` started from as ``start_state`` — rebuilt from ``parent_start`` as its
    training built them (:func:`benchmark.training.loop.start_detector`), so the mix's ends
    are bit for bit its two inputs. Its RGN is that of the training it mixes. Writes and
    returns the stage's final checkpoint."""
    from benchmark.training import checkpoint
    from benchmark.training.loop import start_detector

    num_classes = len(LabelMap(load_split(spec.train_split)))
    start_state = start_detector(parent, num_classes, parent_start).state_dict()
    model = start_detector(spec, num_classes, parent_final)
    get_recipe(spec.recipe).finalize(model, start_state)
    out = TrainingDir(spec.train_fingerprint)
    rgn = checkpoint.read(parent_final).get("rgn")
    out.write_final(checkpoint.to_bytes({"model": model.state_dict(), "rgn": rgn, "log": []}))
    return out.final


# ---------------------------------------------------------------------------------- predict, score
class Scoring:
    """Scores each split's predictions and writes its metrics, in split order (a killed sweep
    resumes at the first split without metrics). ``pooled``: each split is scored in a
    process of its own while the model predicts the next (scoring COCO-C's 75 splits in line
    would hold the GPU up for minutes); else in line. Splits predicted before a failure keep
    their metrics."""

    def __init__(self, spec: RunSpec, out: EvaluationDir, metrics: dict[str, dict],
                 pooled: bool) -> None:
        self.spec, self.out, self.metrics = spec, out, metrics
        self.pool = ProcessPoolExecutor(1, mp_context=get_context("forkserver")) if pooled else None
        self.pending: deque[tuple[str, Future]] = deque()

    def __enter__(self) -> Scoring:
        return self

    def score(self, split: ResolvedSplit, predictions: list[dict[str, Any]]) -> None:
        from benchmark.evaluation import evaluate_split

        gt = split.split.annotation_path  # a corruption keeps the base split's boxes
        if self.pool is None:
            self.metrics[split.name] = evaluate_split(self.spec, split.name, gt, predictions)
            self.out.write_metrics(split.name, self.metrics[split.name])
        else:
            self.pending.append((split.name, self.pool.submit(
                evaluate_split, self.spec, split.name, gt, predictions)))
            self._record(block=False)

    def _record(self, block: bool) -> None:  # in split order: resuming starts at the first gap
        while self.pending and (block or self.pending[0][1].done()):
            name, scored = self.pending.popleft()
            self.metrics[name] = scored.result()
            self.out.write_metrics(name, self.metrics[name])

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._record(block=True)
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)


def evaluate_stage(spec: RunSpec, checkpoint: Path, *, progress: bool = True) -> dict[str, dict]:
    """Predict and score every eval split not yet evaluated, in one pass over the checkpoint
    (:func:`benchmark.inference.predict_splits`); each split's predictions and metrics are
    written as soon as it is done (:class:`Scoring`), so a killed sweep resumes at the first
    split without metrics. Returns {split: its metrics}."""
    from benchmark.training import load_detector

    out = TrainingDir(spec.train_fingerprint).evaluation(spec.eval_fingerprint)
    metrics: dict[str, dict] = {}
    todo: list[str] = []
    for name in spec.eval_splits:
        done = out.read_metrics(name)
        if done is not None:
            metrics[name] = done
        else:
            todo.append(name)
    if not todo:
        return metrics
    labels = LabelMap(load_split(spec.train_split))
    model = load_detector(spec, len(labels), checkpoint)
    splits = [resolve_split(name) for name in todo]
    workers = loader_workers()
    with Scoring(spec, out, metrics, pooled=bool(workers)) as scoring:
        for split, predictions in predict_splits(model, splits, labels,
                                                 spec.schedule.eval_batch_size,
                                                 workers=workers, progress=progress):
            out.write_predictions(split.name, predictions)
            scoring.score(split, predictions)
    return {name: metrics[name] for name in spec.eval_splits}


# ---------------------------------------------------------------------------------- cell
def run_cell(
    spec: RunSpec, *, grid: str = "", progress: bool = True, verify: bool = True
) -> dict[str, Any]:
    """Train, evaluate and record one cell; idempotent and resumable. The cell's images are
    verified against their splits first (cached: a rerun only stats them); a second process
    asked for the same cell waits for the first and returns its record."""
    from benchmark.cpu_pinning import apply_in_process, pinned

    cell = Cell(spec.fingerprint)
    done = cell.read_record()
    if done is not None:
        return done
    if pinned():  # a reproducible_cpu grid: this process started with the pinned environment
        apply_in_process()
    if world()[0] != 0:  # DDP workers only help train; rank 0 evaluates and records
        train_stage(spec, progress=False)
        return {}
    clock = WorkClock()
    with contextlib.ExitStack() as stack:
        with clock.waiting():
            stack.enter_context(cell_lock(cell.lock))
        done = cell.read_record()  # another process may have finished it meanwhile
        if done is not None:
            return done
        if verify:
            from benchmark.data.verify import verify_splits

            verify_splits(spec.all_splits)
        remove_stray_temp_files(cell.dir, recursive=False)  # of a write killed mid-way
        cell.write_spec(grid, spec.to_json())
        cell.retire_failed()
        cell.write_running()
        try:
            return _run_locked(spec, cell, grid, clock, progress)
        finally:
            cell.clear_running()


def _run_locked(
    spec: RunSpec, cell: Cell, grid: str, clock: WorkClock, progress: bool
) -> dict[str, Any]:
    from benchmark.evaluation import summarize
    from benchmark.protocol_card import card_of
    from benchmark.provenance import provenance
    from benchmark.training import checkpoint

    started = datetime.now(UTC)
    try:
        final = train_stage(spec, progress=progress, clock=clock)
        metrics = evaluate_stage(spec, final, progress=progress)
        state = checkpoint.read(final)
        wall = clock.work_seconds()
        prov = provenance()
        prov.update(
            datasets=dict(spec.data),
            started=started.isoformat(timespec="seconds"),
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
            wall_time_s=round(wall, 1),
            gpu_hours=round(wall / 3600, 4) if torch.cuda.is_available() else 0.0,
        )
        out = TrainingDir(spec.train_fingerprint)
        evals = out.evaluation(spec.eval_fingerprint)
        record = make_record(
            spec,
            grid=grid,
            protocol=card_of(spec).to_json(),  # the card it ran with (benchmark.protocol_card)
            metrics=metrics,
            summary=summarize(spec, metrics),
            rgn=state.get("rgn"),
            provenance=prov,
            checkpoint=out.relative(out.final),
            predictions={s: out.relative(evals.predictions(s)) for s in spec.eval_splits},
            smoke=os.environ.get(SMOKE_ENV) == "1",
        )
    except Exception as e:  # not SystemExit / Interrupted: a requeue or a Ctrl-C is no failure
        tail = traceback.format_exc().splitlines()[-15:]
        cell.write_failed(
            {
                "error": str(e) if isinstance(e, BenchmarkError) else f"{type(e).__name__}: {e}",
                "traceback_tail": tail,
                "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        raise
    cell.write_record(record)
    return record
