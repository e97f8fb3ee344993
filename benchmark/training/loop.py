"""The training loop: seeded, resumable from atomic checkpoints, RGN measured at the start.

Every random draw of iteration ``i`` (batch composition, flips, the train size, RPN/RoI
sampling) is a function of (run seed, i), so a run resumed from a checkpoint takes exactly
the same steps as one that never stopped. The loop knows the detector only through the
engine contract (:class:`benchmark.models.Detector`) and the recipe only through the recipe
interface (:class:`benchmark.recipes.Recipe`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

import benchmark.training.checkpoint as checkpoint
from benchmark.data.labels import LabelMap
from benchmark.data.loader import DetectionDataset, study_crop
from benchmark.data.split import PreparedSplit
from benchmark.errors import BenchmarkError, Interrupted
from benchmark.models import Detector
from benchmark.models.engine import Batch, engine_needs_masks
from benchmark.recipes import get_recipe, parent_of
from benchmark.rgn import measure_rgn
from benchmark.runtime import (
    PreemptionGuard,
    device,
    init_distributed,
    loader_workers,
    on_slurm,
    world,
)
from benchmark.spec import RunSpec, derive_seed
from benchmark.store import TrainingDir
from benchmark.training.norm_decay import with_norm_decay
from benchmark.training.precision import Precision
from benchmark.training.schedule import batch_indices, lr_factor


class TrainingDiverged(BenchmarkError):
    pass


def start_detector(spec: RunSpec, num_classes: int, init_from: Path | None) -> Detector:
    """The detector a training of ``spec`` starts from (θ0): ``init_from``'s weights (its
    parent's final checkpoint) over a decoder initialised from the run's seed. The loop
    builds it so; a mixing stage rebuilds a training's θ0 with it, bit for bit."""
    seed = derive_seed(spec.seed, spec.seed_fingerprint, "train")  # as Trainer.seed
    torch.manual_seed(derive_seed(seed, "init"))  # the decoder's initial weights
    return checkpoint.load_detector(spec, num_classes, init_from)


def _hflip(image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    flipped = {**target, "boxes": boxes}
    if "masks" in target:  # (N, H, W) instance masks flip with the image
        flipped["masks"] = target["masks"].flip(-1)
    return image.flip(-1), flipped


#: iterations between the loop's host reads (the log line, the divergence check)
LOG_EVERY = 10


class _Divergence:
    """The first non-finite loss of a training, tracked on the device so that a step never
    waits for the GPU; :meth:`check` reads it (one host read) every ``LOG_EVERY`` steps and
    before every checkpoint, so a diverged model is never saved."""

    def __init__(self, device: torch.device) -> None:
        self.first = torch.full((), -1, dtype=torch.int64, device=device)
        self.value = torch.zeros((), dtype=torch.float32, device=device)

    def observe(self, it: int, total: torch.Tensor) -> None:
        new = ~torch.isfinite(total.detach()) & (self.first < 0)
        self.first = torch.where(new, torch.full_like(self.first, it), self.first)
        self.value = torch.where(new, total.detach().float(), self.value)

    def check(self, message: Callable[[int, float], str]) -> None:
        first = int(self.first)
        if first >= 0:
            raise TrainingDiverged(message(first, float(self.value)))


class Trainer:
    def __init__(self, spec: RunSpec, split: PreparedSplit, out: TrainingDir) -> None:
        self.spec = spec
        self.split = split
        self.out = out
        self.masks = engine_needs_masks(spec.engine)  # Mask R-CNN: instance masks too
        self.dataset = DetectionDataset(split, masks=self.masks)
        self.labels = LabelMap(split)
        self.seed = derive_seed(spec.seed, spec.seed_fingerprint, "train")
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
        self.guard: PreemptionGuard | None = None
        self.model: Detector | None = None  # the trained model, once run() returns
        self.precision = Precision(spec.schedule.amp, self.device)

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

    def assemble(self, items: list[tuple[torch.Tensor, dict]], flips: list[bool],
                 it: int, purpose: str = "train") -> Batch:
        """The batch the detector sees: labels mapped, flips applied and, for training with
        ``schedule.augment: study_crop``, the transfer study's Swin crop policy
        (:func:`benchmark.data.loader.study_crop`, drawn from (run seed, it, rank))."""
        crop = purpose == "train" and self.spec.schedule.augment == "study_crop"
        gen = torch.Generator().manual_seed(
            derive_seed(self.seed, "augment", it, *self._rank_part())) if crop else None
        images, targets = [], []
        for (image, target), flip in zip(items, flips, strict=True):
            kept = {"boxes": target["boxes"], "labels": self.labels.to_labels(target["labels"])}
            if self.masks:  # decoded by the loader (in its workers, when it has some)
                kept["masks"] = target["masks"]
            target = kept
            if flip:
                image, target = _hflip(image, target)
            if gen is not None:  # after the flip, as the study's pipeline (RandomFlip first)
                image, target = study_crop(image, target, gen)
            images.append(image.to(self.device))
            targets.append({k: v.to(self.device) for k, v in target.items()})
        return images, targets

    def batch(self, it: int, purpose: str = "train") -> Batch:
        idx, flips = self.draw(it, purpose)
        return self.assemble([self.dataset[i] for i in idx], flips, it, purpose)

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
            yield (start + it, *self.assemble(list(zip(images, targets, strict=True)), flips,
                                              start + it))

    # ---- model -----------------------------------------------------------------------------
    def build(self, init_from: Path | None) -> Detector:
        return start_detector(self.spec, len(self.labels), init_from)

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
        if self.precision.scaler is not None:  # amp fp16: a resume continues its loss scale
            state["scaler"] = self.precision.scaler.state_dict()
        self.out.write_checkpoint(checkpoint.to_bytes(state))

    # ---- the loop --------------------------------------------------------------------------
    def run(self, init_from: Path | None = None, progress: bool = True) -> Path:
        if self.out.final.is_file():
            return self.out.final
        if not self.recipe.trains:
            raise BenchmarkError(f"recipe {self.spec.recipe.name!r} trains nothing: its weights "
                                 "are a mixing stage's (benchmark.pipeline.mix_stage)")
        sched = self.spec.schedule
        model = self.build(init_from)
        start_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

        resume = checkpoint.read_latest(self.out, self.spec.train_fingerprint)
        if resume is None:
            self.rgn, self.importance = self.measure_rgn(model)
        else:
            model.load_state_dict(resume["model"])
            self.iteration, self.rgn, self.log = resume["iteration"], resume["rgn"], resume["log"]
            self.importance = resume.get("importance")

        self.recipe.configure(model, start_state, self.importance)
        lr = self.recipe.lr(sched.lr)
        groups = with_norm_decay(model, self.recipe.param_groups(model, lr),
                                 sched.weight_decay_norm)
        for g in groups:
            g["base_lr"] = g["lr"]
        optimizer = self.recipe.optimizer(groups, lr, sched)  # SGD unless the recipe says
        if resume is not None:
            optimizer.load_state_dict(resume["optimizer"])
            self.precision.load(resume.get("scaler"))

        def save() -> None:
            if self.rank == 0:
                self._save(model, optimizer)

        with PreemptionGuard(save, interrupt=not on_slurm()) as self.guard:
            self._loop(model, optimizer, lr, progress and self.rank == 0)
        self.model = model
        if self.rank != 0:
            return self.out.final
        self.recipe.finalize(model, start_state)
        state = {"model": model.state_dict(), "rgn": self.rgn, "log": self.log}
        self.out.write_final(checkpoint.to_bytes(state))
        return self.out.final

    def _forward(self, model: Detector) -> Callable[[list, list], dict[str, torch.Tensor]]:
        """The loss function of a step: the detector's, or its DDP-wrapped train module."""
        if self.world_size == 1:
            return model.losses
        from torch.nn.parallel import DistributedDataParallel

        init_distributed()
        ddp = DistributedDataParallel(model.train_module())

        def forward(images: list[torch.Tensor], targets: list[dict]) -> dict:
            model.prepare_train()
            return ddp(images, targets)

        return forward

    def _loop(
        self, model: Detector, optimizer: torch.optim.Optimizer, lr: float, progress: bool
    ) -> None:
        from tqdm import tqdm

        assert self.guard is not None
        sched = self.spec.schedule
        forward = self._forward(model)
        bar = tqdm(
            total=sched.iterations,
            initial=self.iteration,
            disable=not progress,
            desc=f"train {self.spec.recipe.name} {self.spec.backbone.name}",
            leave=False,
        )
        t0 = time.time()
        diverged = _Divergence(self.device)
        for it, images, targets in self.batches(self.iteration):
            self._stop_if_asked(model, optimizer, diverged)
            torch.manual_seed(derive_seed(self.seed, "step", it, *self._rank_part()))
            factor = lr_factor(sched, it)
            for g in optimizer.param_groups:
                g["lr"] = g["base_lr"] * factor
            with self.guard.step():
                images, targets = self.recipe.transform_batch(
                    images, targets, self._generator(it))
                with self.precision.autocast():  # fp32 (amp: off) runs no autocast at all
                    losses = forward(images, targets)
                    losses.update(self.recipe.extra_losses(model, images, targets))
                total = sum(losses.values())
                diverged.observe(it, total)  # on the device: no host read in the step
                optimizer.zero_grad(set_to_none=True)
                self.precision.backward(total, optimizer)
                self.recipe.after_backward(model, lr * factor)  # on unscaled gradients
                self.precision.step(optimizer)
                self.iteration = it + 1
            if it % LOG_EVERY == 0 or self.iteration == sched.iterations:
                diverged.check(self._diverged_message)
                values = torch.stack([total.detach(), *(v.detach() for v in losses.values())])
                loss, *parts = values.tolist()  # the one host read of a logging step
                self.log.append(
                    {
                        "iter": it,
                        "loss": loss,
                        "lr": lr * factor,
                        **{k: round(v, 5) for k, v in zip(losses, parts, strict=True)},
                    }
                )
                bar.set_postfix(loss=f"{loss:.3f}")
            if self.iteration % sched.checkpoint_every == 0 and self.rank == 0:
                diverged.check(self._diverged_message)  # never checkpoint a diverged model
                self._save(model, optimizer)
            bar.update(1)
            self._stop_if_asked(model, optimizer, diverged)
        bar.close()
        diverged.check(self._diverged_message)
        if self.rank == 0:
            self.out.write_train_log({"log": self.log, "seconds_last_session": time.time() - t0})

    def _diverged_message(self, it: int, value: float) -> str:
        lr = self.recipe.lr(self.spec.schedule.lr) * lr_factor(self.spec.schedule, it)
        return (f"{self.spec.label}: loss is {value} at iteration {it} (lr {lr:.4g}); "
                "lower schedule.lr or the recipe's lr")

    def _stop_if_asked(
        self, model: Detector, optimizer: torch.optim.Optimizer, diverged: _Divergence
    ) -> None:
        """After SIGINT / SIGTERM: save this iteration and stop (rerunning resumes here)."""
        assert self.guard is not None
        if self.guard.stop_signal is None:
            return
        diverged.check(self._diverged_message)
        if self.rank == 0:
            self._save(model, optimizer)
        raise Interrupted(
            f"{self.spec.label}: interrupted at iteration {self.iteration} of "
            f"{self.spec.schedule.iterations} (checkpoint saved)"
        )

    def _generator(self, it: int) -> torch.Generator:
        """The recipe's random draws of iteration ``it`` (augmentation): on this process's
        device, a function of (run seed, it, rank)."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(derive_seed(self.seed, "recipe", it, *self._rank_part()))
        return gen

    def _rank_part(self) -> tuple[int, ...]:
        return (self.rank,) if self.world_size > 1 else ()

    def measure_rgn(self, model: Detector) -> tuple[dict[str, Any] | None, dict | None]:
        """RGN over min(``rgn_batches``, |train| / batch) batches and, for a regularised
        recipe, its importance maps over min(``importance_batches``, |train| / batch) — at
        the start weights, in train mode, with the full detection loss. Every DDP process
        measures the same."""
        sched = self.spec.schedule
        per_epoch = len(self.dataset) // sched.batch_size
        n = min(sched.rgn_batches, per_epoch)
        params = self.recipe.rgn_parameters(model)
        if n == 0 or not params:
            return None, None

        def loss(it: int) -> torch.Tensor:
            images, targets = self.batch(it, purpose="rgn")
            torch.manual_seed(derive_seed(self.seed, "rgn-step", it))
            return sum(model.losses(images, targets).values())

        acc = measure_rgn(loss, params, range(n))
        parent = parent_of(self.spec)
        at = "dp_checkpoint" if parent is not None and parent.recipe.name == "dp" else "pretrained"
        rgn = {**acc.result(), "at": at}  # published RGN is measured at the DP checkpoint
        importance = None
        if self.recipe.needs_importance:
            m = min(sched.importance_batches, per_epoch)
            importance = (acc if m == n else measure_rgn(loss, params, range(m))).importance()
        model.zero_grad(set_to_none=True)
        return rgn, importance
