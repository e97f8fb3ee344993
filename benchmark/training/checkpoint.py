"""Detector checkpoints: what a training writes and how any stage loads it back."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from benchmark.models import Detector, build_detector
from benchmark.recipes import get_recipe
from benchmark.runtime import device
from benchmark.spec import RunSpec
from benchmark.store import TrainingDir, warn


def to_bytes(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def read(path: Path, *, weights_only: bool = False) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=weights_only)


def is_intact(path: Path) -> bool:
    """Whether ``path`` is a complete, uncorrupted checkpoint (torch's zip container: every
    member's CRC checked)."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def set_aside(path: Path, why: str) -> None:
    """Move a damaged checkpoint out of the way (kept for inspection) and say so."""
    damaged = path.with_name(path.name + ".damaged")
    os.replace(path, damaged)
    warn(f"{path}: {why}; moved to {damaged.name}")


def read_latest(out: TrainingDir, train_fingerprint: str) -> dict[str, Any] | None:
    """The newest intact resumable checkpoint of a training (``last.pt``, else
    ``previous.pt``); damaged ones are set aside. None: start from the beginning."""
    for path in (out.last, out.previous):
        if not path.is_file():
            continue
        if not is_intact(path):
            set_aside(path, "damaged checkpoint (truncated or corrupt), not resumed from")
            continue
        state = read(path)
        if state.get("train_fingerprint") != train_fingerprint:
            set_aside(path, f"checkpoint of another training ({state.get('train_fingerprint')})")
            continue
        return state
    return None


def load_detector(spec: RunSpec, num_classes: int, checkpoint: Path | None) -> Detector:
    """The spec's detector on this process's device, with ``checkpoint``'s weights if given."""
    model = build_detector(spec, num_classes=num_classes)
    get_recipe(spec.recipe).adapt(model)
    if checkpoint is not None:
        model.load_state_dict(read(checkpoint, weights_only=True)["model"])
    return model.to(device())
