"""One kind's smoke run: its cell through the real pipeline (train, then evaluate and
record), measured — seconds per iteration, peak resident memory of the process, trained
parameters, checkpoint and prediction sizes — and, on failure, the stage that failed."""

from __future__ import annotations

import contextlib
import json
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmark.models.checkpoints.catalogue import WeightsEntry
from benchmark.spec import RunSpec


@dataclass
class KindResult:
    kind: str
    fingerprint: str
    stage: str | None = None  # the stage that failed (None: passed)
    error: str | None = None
    log: str | None = None  # where the failure's traceback is
    s_per_iter: float | None = None  # None: the cell trains nothing of its own
    train_s: float = 0.0
    eval_s: float = 0.0
    eval_images: int = 0
    peak_rss_mb: float | None = None  # None: run in the smoke's own process
    trained_params: int | None = None
    checkpoint_bytes: int = 0
    prediction_bytes: int = 0
    device: str | None = None  # where it ran, when not on this machine (a SLURM node)

    @property
    def ok(self) -> bool:
        return self.stage is None

    @property
    def s_per_image(self) -> float | None:
        return self.eval_s / self.eval_images if self.eval_images else None


def run_kind(kind: str, spec: RunSpec, grid: str, entries: tuple[WeightsEntry, ...],
             logs: Path, *, progress: bool = False, isolated: bool = True,
             on_stage: Callable[[str], None] | None = None) -> KindResult:
    """Run ``spec`` (standing for ``kind``) with the stand-in weights ``entries`` registered;
    never raises for a failure of the cell: the result names the stage (``on_stage`` hears
    each stage as it starts, so a process killed mid-way is still placed)."""
    from benchmark.models.checkpoints import catalogue

    result = KindResult(kind, spec.fingerprint)
    stage = ["train"]

    def enter(name: str) -> None:
        stage[0] = name
        if on_stage is not None:
            on_stage(name)

    with contextlib.ExitStack() as stack:
        for entry in entries:
            if catalogue.lookup(entry.name) is None:
                stack.enter_context(catalogue.registered(entry))
        try:
            _measure(spec, grid, result, progress, enter)
        except Exception as e:  # noqa: BLE001 - any failure is the smoke's finding
            result.stage = stage[0]
            result.error = f"{type(e).__name__}: {e}".splitlines()[0][:300]
            logs.mkdir(parents=True, exist_ok=True)
            log = logs / f"{spec.fingerprint}.log"
            log.write_text(f"{kind}\nstage {result.stage}\n\n{traceback.format_exc()}")
            result.log = str(log)
    if isolated:
        result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _measure(spec: RunSpec, grid: str, result: KindResult, progress: bool,
             enter: Callable[[str], None]) -> None:
    from benchmark.data.split import resolve_split
    from benchmark.pipeline import run_cell, train_stage
    from benchmark.recipes import get_recipe
    from benchmark.store import TrainingDir

    enter("train")
    t0 = time.monotonic()
    final = train_stage(spec, progress=progress)
    result.train_s = time.monotonic() - t0
    out = TrainingDir(spec.train_fingerprint)
    log = out.dir / "train_log.json"
    if get_recipe(spec.recipe).trains and log.is_file():
        seconds = json.loads(log.read_text()).get("seconds_last_session")
        if seconds is not None:
            result.s_per_iter = seconds / spec.schedule.iterations
    result.checkpoint_bytes = final.stat().st_size
    enter("evaluate")
    t0 = time.monotonic()
    run_cell(spec, grid=grid, progress=progress, verify=False)
    result.eval_s = time.monotonic() - t0
    result.eval_images = sum(len(resolve_split(s).split.coco["images"]) for s in spec.eval_splits)
    evals = out.evaluation(spec.eval_fingerprint)
    result.prediction_bytes = sum(evals.predictions(s).stat().st_size for s in spec.eval_splits)
    enter("count")
    result.trained_params = trained_parameters(spec, final)


def trained_parameters(spec: RunSpec, final: Path) -> int:
    """Parameters the training changed: the detector as its training started (rebuilt the
    way the trainer builds it) against its final weights; 0 for a cell that trains nothing."""
    import torch

    from benchmark.data.split import load_split
    from benchmark.recipes import get_recipe, parent_of
    from benchmark.store import TrainingDir
    from benchmark.training import Trainer, checkpoint

    if not get_recipe(spec.recipe).trains:
        return 0
    parent = parent_of(spec)
    init_from = TrainingDir(parent.train_fingerprint).final if parent is not None else None
    trainer = Trainer(spec, load_split(spec.train_split), TrainingDir(spec.train_fingerprint))
    start = trainer.build(init_from)
    after = checkpoint.read(final)["model"]
    return sum(p.numel() for name, p in start.named_parameters()
               if name in after and not torch.equal(p.detach(), after[name]))
