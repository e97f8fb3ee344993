"""Detector checkpoints: what a training writes and how any stage loads it back."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from benchmark.models import Detector, build_detector
from benchmark.runtime import device
from benchmark.spec import RunSpec


def to_bytes(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def read(path: Path, *, weights_only: bool = False) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=weights_only)


def load_detector(spec: RunSpec, num_classes: int, checkpoint: Path | None) -> Detector:
    """The spec's detector on this process's device, with ``checkpoint``'s weights if given."""
    model = build_detector(spec, num_classes=num_classes)
    if checkpoint is not None:
        model.load_state_dict(read(checkpoint, weights_only=True)["model"])
    return model.to(device())
