"""SLURM's warning signal (SIGUSR2) during a training step: its handler (submitit's, which
calls checkpoint + requeue) is deferred to the end of the step, so the checkpoint it writes
holds the latest completed iteration."""

from __future__ import annotations

import os
import signal
import threading
import time

import torch

from benchmark.data.split import load_split
from benchmark.grid import load_grid
from benchmark.runtime import checkpoint_now
from benchmark.store import TrainingDir
from benchmark.training import Trainer
from tests.conftest import TESTS


def test_sigusr2_mid_step_checkpoints_the_latest_iteration(bench_env):
    spec = load_grid(str(TESTS / "grids" / "resume.yaml")).runs[0]
    out = TrainingDir(spec.train_fingerprint)
    trainer = Trainer(spec, load_split(spec.train_split), out)
    seen: list[tuple[bool, bool, int, int]] = []

    def handler(signum, frame):  # stands where submitit's checkpoint_and_try_requeue stands
        saved = checkpoint_now()
        on_disk = torch.load(out.last, weights_only=False)["iteration"] if saved else -1
        in_step = trainer.guard is not None and trainer.guard.in_step
        seen.append((saved, in_step, trainer.iteration, on_disk))

    stop = threading.Event()

    def pester():
        while not stop.is_set():
            time.sleep(0.15)
            os.kill(os.getpid(), signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, handler)
    thread = threading.Thread(target=pester, daemon=True)
    try:
        thread.start()
        trainer.run(progress=False)
    finally:
        stop.set()
        thread.join()
        signal.signal(signal.SIGUSR2, previous)
    during = [s for s in seen if s[0] or s[1]]
    assert len(during) >= 3, seen
    for saved, in_step, iteration, on_disk in during:
        assert saved and not in_step and on_disk == iteration
    assert signal.getsignal(signal.SIGUSR2) is previous
