"""The squeeze-and-excitation block :mod:`benchmark.recipes.se_adapters` inserts into a body,
in a module of its own so that importing the recipes (grid validation) does not import torch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class SEBlock(nn.Module):
    """mind_back's ``SEModule`` (senet.py:56-76) on (N, C, H, W) maps, or (N, H, W, C) with
    ``channels_last`` (Swin's stages)."""

    def __init__(self, channels: int, reduction: int, channels_last: bool = False,
                 init: str = "kaiming") -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        self.channels_last = channels_last
        for conv in (self.fc1, self.fc2):
            if init == "trunc_normal":  # convnext.py:248-251 (timm's trunc_normal_, ±2)
                nn.init.trunc_normal_(conv.weight, std=0.02)
                nn.init.zeros_(conv.bias)
            else:  # senet.py:48-50; biases keep the default draw
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """σ(fc2(relu(fc1(mean over H, W)))), shaped (N, C, 1, 1)."""
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
            return (x * self.gate(x)).permute(0, 2, 3, 1)
        return x * self.gate(x)

    def as_hook(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        """A forward hook: the stage's output through this block."""
        return self(output)
