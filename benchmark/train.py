"""The training loop: seeded, resumable from atomic checkpoints, RGN measured at the start.

Every random draw of iteration ``i`` (batch composition, flips, the train size, RPN/RoI
sampling) is a function of (run seed, i), so a run resumed from a checkpoint takes exactly
the same steps as one that never stopped.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.data.loader import DetectionDataset
from benchmark.data.split import PreparedSplit
from benchmark.errors import BenchmarkError
from benchmark.models.detector import Detector, build_detector
from benchmark.recipes import get_recipe
from benchmark.rgn import measure_rgn
from benchmark.spec import RunSpec, Schedule, derive_seed
from benchmark.store import atomic_write_bytes

LAST = "last.pt"
FINAL = "model_final.pt"


class TrainingDiverged(BenchmarkError):
    pass


def world() -> tuple[int, int]:
    """(rank, world size) from the environment torchrun / submitit set; (0, 1) alone."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def loader_workers() -> int:
    """Image-decoding worker processes for training ($BENCH_LOADER_WORKERS)."""
    default = "4" if torch.cuda.is_available() else "0"
    return int(os.environ.get("BENCH_LOADER_WORKERS", default))


def device() -> torch.device:
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed() -> None:
    """Join the process group when launched as one of several tasks (DDP)."""
    import torch.distributed as dist

    rank, size = world()
    if size > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=size)


def lr_factor(schedule: Schedule, it: int) -> float:
    """Multiplier of the base lr at iteration ``it`` (0-based).

    ``step``: linear warm-up over ``warmup_iters`` from 0.001, then ×0.1 at each of ``steps``
    (detectron2's WarmupMultiStepLR). ``onecycle``: linear warm-up over
    max(warmup_iters, 20 % of the run), then cosine decay to 0.
    """
    if schedule.policy == "step":
        warm = 1.0
        if it < schedule.warmup_iters:
            alpha = it / schedule.warmup_iters
            warm = 0.001 * (1 - alpha) + alpha
        return warm * 0.1 ** sum(it >= s for s in schedule.steps)
    warmup = max(schedule.warmup_iters, int(0.2 * schedule.iterations), 1)
    if it < warmup:
        return (it + 1) / warmup
    progress = (it - warmup) / max(1, schedule.iterations - warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def batch_indices(n: int, batch_size: int, seed: int, it: int) -> list[int]:
    """Indices of iteration ``it``: consecutive slices of per-epoch seeded permutations."""
    out: list[int] = []
    pos = it * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(pos, n)
        perm = np.random.default_rng(derive_seed(seed, "order", epoch)).permutation(n)
        take = min(batch_size - len(out), n - offset)
        out.extend(int(i) for i in perm[offset : offset + take])
        pos += take
    return out


def load_detector(spec: RunSpec, num_classes: int, checkpoint: Path | None) -> Detector:
    """The spec's detector on this process's device, with ``checkpoint``'s weights if given."""
    model = build_detector(spec, num_classes=num_classes)
    if checkpoint is not None:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
    return model.to(device())


class LabelMap:
    """Category ids of a split ↔ contiguous model labels 1..K (0 is background)."""

    def __init__(self, split: PreparedSplit) -> None:
        self.cat_ids = sorted(c["id"] for c in split.coco["categories"])
        self._to_label = {c: i + 1 for i, c in enumerate(self.cat_ids)}

    def to_labels(self, cat_ids: torch.Tensor) -> torch.Tensor:
        return torch.tensor([self._to_label[int(c)] for c in cat_ids], dtype=torch.int64)

    def to_cat_ids(self, labels: torch.Tensor) -> list[int]:
        return [self.cat_ids[int(lb) - 1] for lb in labels]

    def __len__(self) -> int:
        return len(self.cat_ids)


def _hflip(image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    return image.flip(-1), {**target, "boxes": boxes}


class Trainer:
    def __init__(self, spec: RunSpec, split: PreparedSplit, out_dir: Path) -> None:
        self.spec = spec
        self.split = split
        self.out_dir = Path(out_dir)
        self.dataset = DetectionDataset(split)
        self.labels = LabelMap(split)
        self.seed = derive_seed(spec.seed, spec.train_fingerprint, "train")
        self.device = device()
        self.recipe = get_recipe(spec.recipe)
        self.rank, self.world_size = world()
        if spec.schedule.batch_size % self.world_size:
            raise BenchmarkError(
                f"schedule.batch_size={spec.schedule.batch_size}: not divisible by the "
                f"{self.world_size} processes of this run"
            )
        self.iteration = 0
        self.rgn: dict[str, Any] | None = None
        self.importance: dict[str, dict[str, torch.Tensor]] | None = None
        self.log: list[dict[str, Any]] = []
        self._in_step = False
        self._deferred: tuple[Any, int, Any] | None = None
        self._in_handler = False
        self.model: Detector | None = None  # the trained model, once run() returns

    # ---- data ------------------------------------------------------------------------------
    def draw(self, it: int, purpose: str = "train") -> tuple[list[int], list[bool]]:
        """Image indices and flips of iteration ``it``: a function of (run seed, it) only."""
        sched = self.spec.schedule
        seed = self.seed if purpose == "train" else derive_seed(self.seed, purpose)
        idx = batch_indices(len(self.dataset), sched.batch_size, seed, it)
        flips = np.random.default_rng(derive_seed(seed, "flip", it)).random(len(idx)) < 0.5
        flips = [bool(f) and sched.hflip for f in flips]
        if purpose == "train" and self.world_size > 1:  # each process takes its share
            idx, flips = idx[self.rank :: self.world_size], flips[self.rank :: self.world_size]
        return idx, flips

    def assemble(
        self, items: list[tuple[torch.Tensor, dict]], flips: list[bool]
    ) -> tuple[list[torch.Tensor], list[dict]]:
        images, targets = [], []
        for (image, target), flip in zip(items, flips, strict=True):
            target = {"boxes": target["boxes"], "labels": self.labels.to_labels(target["labels"])}
            if flip:
                image, target = _hflip(image, target)
            images.append(image.to(self.device))
            targets.append({k: v.to(self.device) for k, v in target.items()})
        return images, targets

    def batch(self, it: int, purpose: str = "train") -> tuple[list[torch.Tensor], list[dict]]:
        idx, flips = self.draw(it, purpose)
        return self.assemble([self.dataset[i] for i in idx], flips)

    def batches(self, start: int) -> Iterator[tuple[int, list[torch.Tensor], list[dict]]]:
        """Training batches from iteration ``start`` on. With ``$BENCH_LOADER_WORKERS`` > 0
        (default: 4 on a GPU, 0 on the CPU) images are decoded ahead in worker processes;
        the batches are the same either way."""
        stop = self.spec.schedule.iterations
        workers = loader_workers()
        if workers == 0:
            for it in range(start, stop):
                yield (it, *self.batch(it))
            return
        from torch.utils.data import DataLoader

        from benchmark.data.loader import collate

        draws = [self.draw(it) for it in range(start, stop)]
        loader = DataLoader(
            self.dataset,
            batch_sampler=[idx for idx, _ in draws],
            num_workers=workers,
            collate_fn=collate,
            multiprocessing_context="forkserver",
            prefetch_factor=4,
        )
        for it, ((images, targets), (_, flips)) in enumerate(zip(loader, draws, strict=True)):
            yield (start + it, *self.assemble(list(zip(images, targets, strict=True)), flips))

    # ---- model -----------------------------------------------------------------------------
    def build(self, init_from: Path | None) -> Detector:
        torch.manual_seed(derive_seed(self.seed, "init"))  # the decoder's initial weights
        return load_detector(self.spec, len(self.labels), init_from)

    def _save(self, model: Detector, optimizer: torch.optim.Optimizer) -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "iteration": self.iteration,
            "rgn": self.rgn,
            "importance": self.importance,
            "log": self.log,
            "train_fingerprint": self.spec.train_fingerprint,
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.out_dir / LAST, buf.getvalue())

    # ---- the loop --------------------------------------------------------------------------
    def run(self, init_from: Path | None = None, progress: bool = True) -> Path:
        final = self.out_dir / FINAL
        if final.is_file():
            return final
        sched = self.spec.schedule
        model = self.build(init_from)
        start_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

        last = self.out_dir / LAST
        resume = None
        if last.is_file():
            resume = torch.load(last, map_location="cpu", weights_only=False)
        if resume is None:
            self.rgn, self.importance = self.measure_rgn(model)
        else:
            model.load_state_dict(resume["model"])
            self.iteration, self.rgn, self.log = resume["iteration"], resume["rgn"], resume["log"]
            self.importance = resume.get("importance")

        self.recipe.configure(model, start_state, self.importance)
        lr = self.recipe.lr(sched.lr)
        groups = self.recipe.param_groups(model, lr)
        for g in groups:
            g["base_lr"] = g["lr"]
        optimizer = torch.optim.SGD(
            groups, lr=lr, momentum=sched.momentum, weight_decay=sched.weight_decay
        )
        if resume is not None:
            optimizer.load_state_dict(resume["optimizer"])

        global _ACTIVE
        _ACTIVE = (self, model, optimizer)
        try:
            with _defer_preemption_signal(self):
                self._loop(model, optimizer, lr, progress and self.rank == 0)
        finally:
            _ACTIVE = None
        self.model = model
        if self.rank != 0:
            return final
        self.recipe.finalize(model, start_state)
        buf = io.BytesIO()
        torch.save({"model": model.state_dict(), "rgn": self.rgn, "log": self.log}, buf)
        atomic_write_bytes(final, buf.getvalue())
        last.unlink(missing_ok=True)
        return final

    def _loop(
        self, model: Detector, optimizer: torch.optim.Optimizer, lr: float, progress: bool
    ) -> None:
        from tqdm import tqdm

        sched = self.spec.schedule
        forward = model.losses
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            init_distributed()
            ddp = DistributedDataParallel(model.model)

            def forward(images: list[torch.Tensor], targets: list[dict]) -> dict:
                model.prepare_train()
                return ddp(images, targets)

        bar = tqdm(
            total=sched.iterations,
            initial=self.iteration,
            disable=not progress,
            desc=f"train {self.spec.recipe.name} {self.spec.backbone.name}",
            leave=False,
        )
        t0 = time.time()
        for it, images, targets in self.batches(self.iteration):
            torch.manual_seed(derive_seed(self.seed, "step", it, *self._rank_part()))
            factor = lr_factor(sched, it)
            for g in optimizer.param_groups:
                g["lr"] = g["base_lr"] * factor
            self._in_step = True
            losses = forward(images, targets)
            losses.update(self.recipe.extra_losses(model))
            total = sum(losses.values())
            if not torch.isfinite(total):
                raise TrainingDiverged(
                    f"{self.spec.label}: loss is {total.item()} at iteration {it} "
                    f"(lr {lr * factor:.4g}); lower schedule.lr or the recipe's lr"
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            self.recipe.after_backward(model, lr * factor)
            optimizer.step()
            self.iteration = it + 1
            self._in_step = False
            if self._deferred is not None:  # a preemption warning arrived during the step
                handler, signum, frame = self._deferred
                self._deferred = None
                self._in_handler = True
                try:
                    handler(signum, frame)
                finally:
                    self._in_handler = False
            if it % 10 == 0 or self.iteration == sched.iterations:
                self.log.append(
                    {
                        "iter": it,
                        "loss": total.item(),
                        "lr": lr * factor,
                        **{k: round(v.item(), 5) for k, v in losses.items()},
                    }
                )
            if self.iteration % sched.checkpoint_every == 0 and self.rank == 0:
                self._save(model, optimizer)
            bar.update(1)
            bar.set_postfix(loss=f"{total.item():.3f}")
        bar.close()
        if self.rank != 0:
            return
        (self.out_dir / "train_log.json").write_text(
            json.dumps({"log": self.log, "seconds_last_session": time.time() - t0})
        )

    def _rank_part(self) -> tuple[int, ...]:
        return (self.rank,) if self.world_size > 1 else ()

    def measure_rgn(self, model: Detector) -> tuple[dict[str, Any] | None, dict | None]:
        """RGN (and the importance maps of regularised recipes) at the start weights, in
        train mode, with the full detection loss. Every DDP process measures the same."""
        sched = self.spec.schedule
        n = min(sched.rgn_batches, len(self.dataset) // sched.batch_size)
        params = model.body_parameters()
        if n == 0 or not params:
            return None, None

        def loss(it: int) -> torch.Tensor:
            images, targets = self.batch(it, purpose="rgn")
            torch.manual_seed(derive_seed(self.seed, "rgn-step", it))
            return sum(model.losses(images, targets).values())

        acc = measure_rgn(loss, params, range(n))
        model.zero_grad(set_to_none=True)
        rgn = {**acc.result(), "at": "start weights of this run's training stage"}
        return rgn, (acc.importance() if self.recipe.needs_importance else None)

    def save_if_idle(self, model: Detector, optimizer: torch.optim.Optimizer) -> bool:
        if self._in_step or self.rank != 0:
            return False
        self._save(model, optimizer)
        return True


_ACTIVE: tuple[Trainer, Detector, torch.optim.Optimizer] | None = None


@contextlib.contextmanager
def _defer_preemption_signal(trainer: Trainer) -> Iterator[None]:
    """While a step runs, hold back the SIGUSR2 handler (SLURM's time-limit / preemption
    warning, on which submitit checkpoints and requeues): it runs right after the step, so
    it always finds the trainer between steps and :func:`checkpoint_now` saves the latest
    state. Python runs signal handlers in the main thread only, so this is race-free."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGUSR2)
    if not callable(previous):
        yield
        return

    def deferring(signum: int, frame: Any) -> None:
        if trainer._in_step or trainer._in_handler:  # also: never re-enter a running save
            trainer._deferred = (previous, signum, frame)
            return
        trainer._in_handler = True
        try:
            previous(signum, frame)
        finally:
            trainer._in_handler = False

    signal.signal(signal.SIGUSR2, deferring)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR2, previous)


def checkpoint_now() -> bool:
    """Save the running training's state if it is between steps (for preemption signals).

    The SIGUSR2 handler is deferred past the running step, so on SLURM's warning this
    always saves; it returns False when no training runs.
    """
    if _ACTIVE is None:
        return False
    trainer, model, optimizer = _ACTIVE
    return trainer.save_if_idle(model, optimizer)
