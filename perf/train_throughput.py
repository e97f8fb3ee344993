"""Training throughput at the reference setup (see ``_throughput.py``): one SGD step
(momentum 0.9, lr 0: nothing diverges) of each engine, forward under ``torch.autocast`` for
AMP and a ``GradScaler`` for fp16, as the suite's training loop does (``schedule.amp``).

    python perf/train_throughput.py [--small] [--precisions fp32,fp16,bf16]
                                          [--channels-last off,on]
"""

from __future__ import annotations

import torch
from _throughput import Engine, Setup, autocast, batch, device, median_seconds, run


def measure(engine: Engine, precision: str, setup: Setup) -> float:
    images, targets = batch(setup)
    params = [p for p in engine.module.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.0, momentum=0.9)
    scaler = torch.amp.GradScaler(device().type, enabled=precision == "fp16")

    def step() -> None:
        with autocast(precision):
            losses = engine.losses(images, targets)
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()

    return median_seconds(step, setup)


if __name__ == "__main__":
    run("train", measure, __doc__.splitlines()[0])
