"""What the counterfactual-distillation and relevance recipes share: the tensor the engine
feeds the body on a step (normalised, resized, padded), the ground-truth boxes on it, and
box masks at patch resolution.

The tensor is taken by a forward-pre-hook on the body's first stage (``Body.levels`` and
``Body.forward`` both run it, whichever the engine's FPN calls), so no engine is edited.
The boxes on that tensor are the engine's resized targets where the engine exposes a
torchvision-style ``transform`` (output ``(ImageList, targets)``: exact); otherwise each
image's boxes are scaled by min(tensor H / image H, tensor W / image W) (exact for the
batch's largest image, within the 32-px padding for the others).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from benchmark.models import Detector


class BatchCapture:
    """Hooks that keep the body input of the latest grad-enabled forward (not while
    :meth:`paused`: a recipe's own body calls) and the boxes the engine resized with it."""

    def __init__(self, model: Detector) -> None:
        from torch import nn

        self.body = model.body
        self.tensor: torch.Tensor | None = None
        self.boxes: list[torch.Tensor] | None = None
        self._paused = False
        first = model.body.stages[0]
        self.handles = [first.register_forward_pre_hook(self._body_input)]
        transform = getattr(getattr(model, "model", None), "transform", None)
        if isinstance(transform, nn.Module):
            self.handles.append(transform.register_forward_hook(self._transformed))

    def _body_input(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        import torch

        if self._paused or not torch.is_grad_enabled():
            return  # a recipe's own call, or evaluation
        x = args[0]
        # the first stage sees Body._input(x): undo the BGR flip (an involution)
        self.tensor = x.flip(1) if self.body.channel_order == "BGR" else x

    def _transformed(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        import torch

        if self._paused or not torch.is_grad_enabled():
            return
        _, targets = output
        self.boxes = None if targets is None else [t["boxes"] for t in targets]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def boxes_on_tensor(self, images: list[torch.Tensor],
                        targets: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
        """Each image's ground-truth boxes in the captured tensor's pixel coordinates."""
        assert self.tensor is not None
        if self.boxes is not None and len(self.boxes) == len(images):
            return self.boxes
        h, w = self.tensor.shape[-2:]
        return [t["boxes"] * min(h / im.shape[-2], w / im.shape[-1])
                for im, t in zip(images, targets, strict=True)]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
        self.tensor = self.boxes = None


def box_mask(boxes: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """(N, 1, H, W) float: 1 at the pixels whose centre lies in one of the image's boxes."""
    import torch

    out = []
    for b in boxes:
        b = b.float()
        device = b.device
        rows = torch.arange(height, device=device, dtype=torch.float32) + 0.5
        cols = torch.arange(width, device=device, dtype=torch.float32) + 0.5
        in_y = (rows[None] >= b[:, 1:2]) & (rows[None] < b[:, 3:4])  # (nb, H)
        in_x = (cols[None] >= b[:, 0:1]) & (cols[None] < b[:, 2:3])  # (nb, W)
        inside = (in_y[:, :, None] & in_x[:, None, :]).any(0) if len(b) else \
            torch.zeros(height, width, dtype=torch.bool, device=device)
        out.append(inside.float())
    return torch.stack(out)[:, None]


def patch_coverage(mask: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, gh, gw): the fraction of each ``patch`` × ``patch`` cell (tiled from the top-left
    corner; a partial last row/column counts its pixels only) that ``mask`` covers."""
    import torch.nn.functional as F

    return F.avg_pool2d(mask, patch, ceil_mode=True, count_include_pad=False)[:, 0]


def to_pixels(patch_mask: torch.Tensor, patch: int, height: int, width: int) -> torch.Tensor:
    """(N, gh, gw) → (N, 1, H, W), each cell repeated over its pixels."""
    up = patch_mask.repeat_interleave(patch, 1).repeat_interleave(patch, 2)
    return up[:, None, :height, :width]
