"""Stages of one cell: train once, evaluate every split, write the record.

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
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from benchmark.data.labels import LabelMap
from benchmark.data.loader import DetectionDataset
from benchmark.data.split import ResolvedSplit, load_split, resolve_split
from benchmark.errors import BenchmarkError
from benchmark.models import Detector
from benchmark.recipes import parent_of
from benchmark.runtime import device, world
from benchmark.spec import RunSpec
from benchmark.store import Cell, TrainingDir, file_lock, remove_stray_temp_files

#: How long a cell waits for another cell's training of the same run (e.g. a shared DP
#: parent) before giving up with an error; $BENCH_LOCK_TIMEOUT_S overrides.
LOCK_TIMEOUT_S = 7 * 24 * 3600.0


def training_lock(path: Path, timeout_s: float | None = None) -> contextlib.AbstractContextManager:
    """So concurrent processes never train (or run) the same thing twice (bounded wait, then
    an error naming the holder)."""
    if timeout_s is None:
        timeout_s = float(os.environ.get("BENCH_LOCK_TIMEOUT_S", LOCK_TIMEOUT_S))
    return file_lock(path, timeout_s, poll_s=1.0)


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
    """Train ``spec`` (its parent first), returning the final checkpoint path."""
    from benchmark.training import Trainer, checkpoint

    out = TrainingDir(spec.train_fingerprint)
    if out.final.is_file() and not checkpoint.is_intact(out.final):
        checkpoint.set_aside(out.final, "damaged final checkpoint; training again")
    if out.final.is_file():
        return out.final
    parent = parent_of(spec)
    init_from = (
        train_stage(parent, progress=progress, clock=clock) if parent is not None else None
    )
    if world()[0] != 0:  # a DDP worker: rank 0 holds the lock and writes the outputs
        return Trainer(spec, load_split(spec.train_split), out).run(init_from, progress=False)
    with contextlib.ExitStack() as stack:
        with clock.waiting() if clock is not None else contextlib.nullcontext():
            stack.enter_context(training_lock(out.lock))
        if out.final.is_file():
            return out.final
        remove_stray_temp_files(out.dir, recursive=False)  # of a write killed mid-way
        trainer = Trainer(spec, load_split(spec.train_split), out)
        return trainer.run(init_from=init_from, progress=progress)


# ---------------------------------------------------------------------------------- evaluate
def predict_split(
    model: Detector, split: ResolvedSplit, labels: LabelMap, batch_size: int, progress: bool = True
) -> list[dict[str, Any]]:
    """Run the detector over a split (corrupted on the fly if so resolved); COCO results in
    the split's own ids."""
    from tqdm import tqdm

    dataset = DetectionDataset(split.split, corruption=split.corruption)
    dev = device()
    results: list[dict[str, Any]] = []
    for start in tqdm(
        range(0, len(dataset), batch_size),
        desc=f"eval {split.name}",
        disable=not progress,
        leave=False,
    ):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        outputs = model.predict([img.to(dev) for img, _ in items])
        # one host read per batch: boxes, label and score of every detection as float64
        # (exact for float32 values and class indices), converted in Python as before
        packed = torch.cat([
            torch.cat([o["boxes"].double(), o["labels"].double()[:, None],
                       o["scores"].double()[:, None]], dim=1)
            for o in outputs
        ]).tolist()
        rows = iter(packed)
        for (_, target), out in zip(items, outputs, strict=True):
            image_id = int(target["image_id"])
            for _ in range(out["scores"].shape[0]):
                x0, y0, x1, y1, label, score = next(rows)
                results.append(
                    {
                        "image_id": image_id,
                        "category_id": labels.cat_ids[int(label)],
                        "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                        "score": round(score, 5),
                    }
                )
    return results


def evaluate_stage(spec: RunSpec, checkpoint: Path, *, progress: bool = True) -> dict[str, dict]:
    """Evaluate every eval split not yet evaluated; return {split: its metrics}."""
    from benchmark.evaluation import evaluate_split
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
    for name in todo:
        split = resolve_split(name)
        preds = predict_split(model, split, labels, spec.schedule.eval_batch_size, progress)
        out.write_predictions(name, preds)
        gt = split.split.annotation_path  # a corruption keeps the base split's boxes
        metrics[name] = evaluate_split(spec, name, gt, preds)
        out.write_metrics(name, metrics[name])
    return {name: metrics[name] for name in spec.eval_splits}


# ---------------------------------------------------------------------------------- cell
def run_cell(
    spec: RunSpec, *, grid: str = "", progress: bool = True, verify: bool = True
) -> dict[str, Any]:
    """Train, evaluate and record one cell; idempotent and resumable. The cell's images are
    verified against their splits first (cached: a rerun only stats them); a second process
    asked for the same cell waits for the first and returns its record."""
    cell = Cell(spec.fingerprint)
    done = cell.read_record()
    if done is not None:
        return done
    if world()[0] != 0:  # DDP workers only help train; rank 0 evaluates and records
        train_stage(spec, progress=False)
        return {}
    clock = WorkClock()
    with contextlib.ExitStack() as stack:
        with clock.waiting():
            stack.enter_context(training_lock(cell.lock))
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
        record = {
            "schema": 1,
            "fingerprint": spec.fingerprint,
            "train_fingerprint": spec.train_fingerprint,
            "grid": grid,
            "spec": spec.to_json(),
            "metrics": metrics,
            "summary": summarize(spec, metrics),
            "rgn": state.get("rgn"),
            "provenance": prov,
            "artifacts": {
                "checkpoint": out.relative(out.final),
                "predictions": {s: out.relative(evals.predictions(s)) for s in spec.eval_splits},
            },
        }
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
