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
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from benchmark.data.labels import LabelMap
from benchmark.data.loader import DetectionDataset
from benchmark.data.split import ResolvedSplit, load_split, resolve_split
from benchmark.errors import BenchmarkError
from benchmark.evaluation.masks import encode_masks
from benchmark.models import Detector
from benchmark.recipes import get_recipe, parent_of
from benchmark.runtime import device, loader_workers, world
from benchmark.spec import RunSpec
from benchmark.store import Cell, TrainingDir, file_lock, remove_stray_temp_files

#: How long a cell waits for another cell's training of the same run (e.g. a shared DP
#: parent) before giving up with an error; $BENCH_LOCK_TIMEOUT_S overrides.
LOCK_TIMEOUT_S = 7 * 24 * 3600.0
#: set to "1" by a smoke test (``python -m benchmark.run --smoke``): its records carry
#: ``"smoke": true`` and are never counted as results (report, compare, status)
SMOKE_ENV = "BENCH_SMOKE"


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
    if parent is not None and not get_recipe(spec.recipe).trains and parent_of(parent):
        # a stage that trains nothing (WiSE-FT) also reads the weights its parent started
        # from: make sure they exist even where the parent's final outlived them
        train_stage(parent_of(parent), progress=progress, clock=clock)
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
def coco_detections(
    targets: list[dict[str, Any]], outputs: list[dict[str, torch.Tensor]], labels: LabelMap
) -> list[dict[str, Any]]:
    """A batch's detections as COCO results in the split's own ids, read from the device
    once: boxes, label and score of every detection as float64 (exact for float32 values and
    class indices). One dict per detection; an engine with more outputs adds its keys here."""
    packed = torch.cat([
        torch.cat([o["boxes"].double(), o["labels"].double()[:, None],
                   o["scores"].double()[:, None]], dim=1)
        for o in outputs
    ]).tolist()
    rows = iter(packed)
    results: list[dict[str, Any]] = []
    for target, out in zip(targets, outputs, strict=True):
        image_id = int(target["image_id"])
        segms = iter(encode_masks(out["masks"])) if "masks" in out else None  # Mask R-CNN
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
            if segms is not None:
                results[-1]["segmentation"] = next(segms)
    return results


def predict_split(
    model: Detector, split: ResolvedSplit, labels: LabelMap, batch_size: int, progress: bool = True
) -> list[dict[str, Any]]:
    """Run the detector over one split in this process, batch after batch (corrupted on the
    fly if so resolved); COCO results in the split's own ids. :func:`predict_splits` gives
    the same results for many splits with the images made ahead in worker processes."""
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
        results.extend(coco_detections([t for _, t in items], outputs, labels))
    return results


class _SweepImages(torch.utils.data.Dataset):
    """The images of several eval splits as one dataset, item ``(split index, image index)``,
    so that one loader decodes (and corrupts) ahead across split boundaries. Splits that
    read the same prepared split share its object, so the annotations travel to a worker
    once, not once per corruption; each worker builds its own datasets."""

    def __init__(self, splits: list[ResolvedSplit]) -> None:
        shared: dict[Path, Any] = {}
        self.splits = [ResolvedSplit(s.name, shared.setdefault(s.split.root, s.split),
                                     s.corruption) for s in splits]
        self._datasets: dict[int, DetectionDataset] = {}

    def sizes(self) -> list[int]:
        return [len(s.split.coco["images"]) for s in self.splits]

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, dict[str, Any]]:
        job, index = key
        if job not in self._datasets:
            split = self.splits[job]
            self._datasets[job] = DetectionDataset(split.split, corruption=split.corruption)
        return self._datasets[job][index]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_datasets": {}}


def predict_splits(
    model: Detector,
    splits: list[ResolvedSplit],
    labels: LabelMap,
    batch_size: int,
    *,
    workers: int | None = None,
    progress: bool = True,
) -> Iterator[tuple[ResolvedSplit, list[dict[str, Any]]]]:
    """(split, its COCO results) for each split in order, as soon as its last batch is
    predicted — one pass over the model, with ``workers`` processes (default
    ``$BENCH_LOADER_WORKERS``, :func:`benchmark.runtime.loader_workers`) decoding and
    corrupting the next batches while the model predicts. The batches, the pixels and so
    the results are those of :func:`predict_split` on each split."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from benchmark.data.loader import collate

    workers = loader_workers() if workers is None else workers
    sweep = _SweepImages(splits)
    sizes = sweep.sizes()
    batches = [[(job, i) for i in range(start, min(start + batch_size, n))]
               for job, n in enumerate(sizes) for start in range(0, n, batch_size)]
    left = [-(-n // batch_size) for n in sizes]  # batches still to predict, per split
    dev = device()
    loader = DataLoader(
        sweep,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=dev.type == "cuda",
        **({"multiprocessing_context": "forkserver", "prefetch_factor": 4} if workers else {}),
    )
    results: list[dict[str, Any]] = []
    done = 0
    bar = tqdm(total=sum(sizes), desc=f"eval {len(splits)} splits", disable=not progress,
               leave=False)
    for (images, targets), batch in zip(loader, batches, strict=True):
        while left[done] == 0:  # an empty split before this batch's
            yield sweep.splits[done], []
            done += 1
        outputs = model.predict([img.to(dev, non_blocking=True) for img in images])
        results.extend(coco_detections(targets, outputs, labels))
        bar.update(len(images))
        left[batch[0][0]] -= 1
        if left[done] == 0:
            yield sweep.splits[done], results
            results, done = [], done + 1
    bar.close()
    for job in range(done, len(splits)):  # empty splits at the end
        yield sweep.splits[job], []


def evaluate_stage(spec: RunSpec, checkpoint: Path, *, progress: bool = True) -> dict[str, dict]:
    """Evaluate every eval split not yet evaluated, in one pass over the checkpoint
    (:func:`predict_splits`); each split's predictions and metrics are written as soon as
    it is done, so a killed sweep resumes at the first split without metrics. With loader
    workers, a split is scored in a process of its own while the model predicts the next
    (scoring COCO-C's 75 splits in line would hold the GPU up for minutes). Returns
    {split: its metrics}."""
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
    splits = [resolve_split(name) for name in todo]
    workers = loader_workers()
    pending: deque[tuple[str, Future]] = deque()

    def record(block: bool) -> None:  # in split order: resuming starts at the first gap
        while pending and (block or pending[0][1].done()):
            name, scored = pending.popleft()
            metrics[name] = scored.result()
            out.write_metrics(name, metrics[name])

    with (ProcessPoolExecutor(1, mp_context=get_context("forkserver")) if workers
          else contextlib.nullcontext()) as pool:
        try:
            for split, preds in predict_splits(model, splits, labels,
                                               spec.schedule.eval_batch_size,
                                               workers=workers, progress=progress):
                out.write_predictions(split.name, preds)
                gt = split.split.annotation_path  # a corruption keeps the base split's boxes
                if pool is None:
                    metrics[split.name] = evaluate_split(spec, split.name, gt, preds)
                    out.write_metrics(split.name, metrics[split.name])
                else:
                    pending.append((split.name,
                                    pool.submit(evaluate_split, spec, split.name, gt, preds)))
                    record(block=False)
        finally:  # splits predicted before a failure keep their metrics
            record(block=True)
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
    from benchmark.protocol import card_of
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
            "protocol": card_of(spec).to_json(),  # the card it ran with (benchmark.protocol)
            "metrics": metrics,
            "summary": summarize(spec, metrics),
            "rgn": state.get("rgn"),
            "provenance": prov,
            "artifacts": {
                "checkpoint": out.relative(out.final),
                "predictions": {s: out.relative(evals.predictions(s)) for s in spec.eval_splits},
            },
        }
        if os.environ.get(SMOKE_ENV) == "1":  # only when true: other records keep their bytes
            record["smoke"] = True
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
