"""Training: the loop (:class:`Trainer`), its per-iteration schedule, and checkpoints."""

from benchmark.training.checkpoint import load_detector
from benchmark.training.loop import Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainingDiverged", "load_detector"]
