"""The demo model and one batch, set up for the step benchmarks (``host_syncs.py``,
``bench_regularisers.py``): one torch thread, the demo grid's first cell, SGD at lr 0."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


@dataclass
class DemoStep:
    trainer: Any  # benchmark.training.Trainer
    model: Any  # the Detector
    optimizer: Any
    images: list
    targets: list


def demo_step() -> DemoStep:
    import torch

    from benchmark.data.split import load_split
    from benchmark.grid import load_grid
    from benchmark.store import TrainingDir
    from benchmark.training import Trainer

    torch.set_num_threads(1)
    spec = load_grid("demo").runs[0]
    trainer = Trainer(spec, load_split(spec.train_split), TrainingDir("bench"))
    model = trainer.build(None)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.0, momentum=0.9)
    images, targets = trainer.batch(0)
    return DemoStep(trainer, model, optimizer, images, targets)
