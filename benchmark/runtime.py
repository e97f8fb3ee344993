"""The process a cell runs in: device, distributed group, loader workers, and preemption.

Preemption has one mechanism. A training loop enters a :class:`PreemptionGuard` with a
``save`` callback and wraps each step in ``guard.step()``. When the scheduler warns (SLURM's
SIGUSR2, on which submitit calls the task's ``checkpoint``), :func:`checkpoint_now` asks every
active guard to save. The SIGUSR2 handler is held back while a step runs and runs right after
it, so the saved state is always the latest completed iteration.

Interruption: with ``interrupt=True`` (local runs; on SLURM the scheduler's signals belong
to submitit) SIGINT and SIGTERM are also held back while a step runs; at the next step
boundary the loop saves and stops (:attr:`PreemptionGuard.stop_signal`), so Ctrl-C or a
``kill`` loses no iteration. Outside a training, :func:`interrupt_on_sigterm` turns SIGTERM
into :class:`benchmark.errors.Interrupted`, which the entry points report in one line.

Nothing here imports torch at module level: the SLURM task imports this module from its
signal path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def world() -> tuple[int, int]:
    """(rank, world size) from the environment torchrun / submitit set; (0, 1) alone."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def device() -> torch.device:
    import torch

    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def loader_workers() -> int:
    """Image-decoding worker processes for training ($BENCH_LOADER_WORKERS)."""
    import torch

    default = "4" if torch.cuda.is_available() else "0"
    return int(os.environ.get("BENCH_LOADER_WORKERS", default))


def init_distributed() -> None:
    """Join the process group when launched as one of several tasks (DDP)."""
    import torch
    import torch.distributed as dist

    rank, size = world()
    if size > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=size)


# ------------------------------------------------------------------------------ preemption
_GUARDS: list[PreemptionGuard] = []


class PreemptionGuard:
    """Saves a running training when the scheduler warns; see the module docstring."""

    def __init__(self, save: Callable[[], None], *, interrupt: bool = False) -> None:
        self.save = save
        self.interrupt = interrupt
        self.in_step = False
        self.stop_signal: int | None = None  # SIGINT / SIGTERM received: stop at a boundary
        self._in_handler = False
        self._deferred: tuple[Any, int, Any] | None = None
        self._previous: Any = None
        self._previous_interrupt: dict[int, Any] = {}

    def save_if_idle(self) -> bool:
        """Save unless a step is running (the deferred handler saves right after it)."""
        if self.in_step:
            return False
        self.save()
        return True

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        self.in_step = True
        try:
            yield
        finally:
            self.in_step = False
        if self._deferred is not None:  # a warning arrived during the step
            handler, signum, frame = self._deferred
            self._deferred = None
            self._call(handler, signum, frame)

    def _call(self, handler: Any, signum: int, frame: Any) -> None:
        self._in_handler = True
        try:
            handler(signum, frame)
        finally:
            self._in_handler = False

    def _deferring(self, signum: int, frame: Any) -> None:
        if self.in_step or self._in_handler:  # also: never re-enter a running save
            self._deferred = (self._previous, signum, frame)
            return
        self._call(self._previous, signum, frame)

    def _stop(self, signum: int, frame: Any) -> None:
        self.stop_signal = signum

    def __enter__(self) -> PreemptionGuard:
        _GUARDS.append(self)
        # Python runs signal handlers in the main thread only, so deferring is race-free
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGUSR2)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGUSR2, self._deferring)
            if self.interrupt:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    self._previous_interrupt[signum] = signal.signal(signum, self._stop)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGUSR2, self._previous)
            self._previous = None
        for signum, handler in self._previous_interrupt.items():
            signal.signal(signum, handler)
        self._previous_interrupt.clear()
        with contextlib.suppress(ValueError):
            _GUARDS.remove(self)


def checkpoint_now() -> int:
    """Ask every active guard to save (newest first); returns how many saved. A failing
    save is logged, not raised: requeueing matters more, and the last periodic checkpoint
    stays."""
    saved = 0
    for guard in reversed(list(_GUARDS)):
        try:
            saved += guard.save_if_idle()
        except Exception:  # noqa: BLE001
            print(f"preemption save failed:\n{traceback.format_exc()}", file=sys.stderr)
    return saved


def on_slurm() -> bool:
    """Whether this process is a SLURM job's task (its signals then belong to submitit)."""
    return "SLURM_JOB_ID" in os.environ


def _raise_interrupted(signum: int, frame: Any) -> None:
    from benchmark.errors import Interrupted

    raise Interrupted(f"interrupted by {signal.Signals(signum).name}")


def interrupt_on_sigterm() -> None:
    """SIGTERM raises :class:`~benchmark.errors.Interrupted` (main thread, not on SLURM):
    stages are atomic, so stopping between any two lines loses no finished work."""
    if threading.current_thread() is threading.main_thread() and not on_slurm():
        signal.signal(signal.SIGTERM, _raise_interrupted)


def die_with_parent() -> None:
    """Ask the kernel to send this process SIGTERM when its parent dies (Linux), so the
    workers of a killed ``run --workers N`` stop (checkpointing) instead of idling on."""
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: workers then outlive a killed parent
        pass
