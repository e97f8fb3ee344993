"""The arithmetic of a training step (``schedule.amp``), kept out of the loop so that fp32
runs exactly the operations it always ran (no autocast, no scaler)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch


class Precision:
    """The step's arithmetic (``schedule.amp``): fp32, or the forward under
    ``torch.autocast`` in bf16 (fp32's exponent range: no loss scaling) or fp16, whose
    gradients a ``GradScaler`` scales (its state is checkpointed, so a resumed run continues
    with the same scale). fp16's scaler reads one flag to the host per step (whether to skip
    it); fp32 and bf16 read none."""

    _DTYPES = {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}

    def __init__(self, amp: str, device: torch.device) -> None:
        self.dtype = self._DTYPES[amp]
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None

    def load(self, state: dict[str, Any] | None) -> None:
        if self.scaler is not None and state is not None:
            self.scaler.load_state_dict(state)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, total: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Gradients of ``total``, unscaled (a recipe's gradient modifier sees true ones)."""
        if self.scaler is None:
            total.backward()
            return
        self.scaler.scale(total).backward()
        self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()
