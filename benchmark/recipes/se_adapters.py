"""Squeeze-and-excitation adapters (Saito et al., "Mind the Backbone"): an SE block after each
of the body's four level stages, trained with the decoder first (``se_dp``), then the whole
network fine-tuned with them (``se_ft``, whose parent is ``se_dp``).

As the study's code (VisionLearningGroup/mind_back@5e6694f):

- the block is ``SEModule`` (``src/modeling/backbone/senet.py:56-76``): x · σ(fc2(relu(fc1(
  mean_hw(x))))) with 1×1 convs, one after each stage ``layer1``–``layer4``, whose output
  feeds the next stage (``SENetResNet.forward_features``, senet.py:634-641);
- reduction 4, 8, 16, 32 from the stride-4 level to the stride-32 one (senet.py:564, 577,
  589, 601; ConvNeXt alike, ``convnext.py:236`` ``2 ** (i + 2)``);
- initialisation: ``_weight_init`` (senet.py:48-53, applied at 606-607): Kaiming-normal
  (fan_out, relu) conv kernels, the convs' biases left at PyTorch's default uniform draw.
  So **the body's output is not unchanged at initialisation**: every level is scaled per
  channel by a gate in (0, 1) (≈ 0.5 on average), the next stages see the scaled maps, and
  the decoder trained with the blocks learns on that (tested);
- the first stage (``se_dp``) freezes every backbone tensor but the SE blocks through
  ``requires_grad`` (``tools/trainer.py:37-41``, TRAIN.SEPRETRAIN) and does **not** detach
  the backbone's output (``stop_grad = PRETRAIN and not SEPRETRAIN``, trainer.py:144): DP's
  ``set_detach_body(True)`` would cut the gradient of every SE block, so ``se_dp`` leaves the
  body attached and frozen by ``requires_grad`` (its BatchNorms are frozen already);
- the SE blocks stay trainable in the second stage (``fbnet_senet`` freezes only ``conv1``
  and ``layer1``, ``src/modeling/backbone/fpn.py:840-844``).

The blocks live in the body (``body.se_adapters``, called by forward hooks on the stages), so
the backbone's own tensors keep their names, the SE tensors train with the backbone's lr and
are part of what DDP synchronises. RGN is measured over the backbone's own tensors, the SE
blocks left out as the study's ``tools/compute_rgn.py:57`` and ``tools/utils.py:86`` do.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from benchmark.errors import ConfigError
from benchmark.recipes import RECIPES, Recipe
from benchmark.spec import RecipeSpec, RunSpec

if TYPE_CHECKING:
    from benchmark.models import Detector
    from benchmark.models.backbones import Body

#: reduction of the SE block after level i (strides 4, 8, 16, 32): mind_back@5e6694f
#: src/modeling/backbone/senet.py:564, 577, 589, 601 (4, 8, 16, 32)
REDUCTIONS = (4, 8, 16, 32)


class SEBlock(nn.Module):
    """mind_back's ``SEModule`` (senet.py:56-76) on (N, C, H, W) maps, or (N, H, W, C) with
    ``channels_last`` (Swin's stages)."""

    def __init__(self, channels: int, reduction: int, channels_last: bool = False) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)
        self.channels_last = channels_last
        for conv in (self.fc1, self.fc2):  # senet.py:48-50; biases keep the default draw
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


def insert_se(body: Body) -> None:
    """An SE block after each of the body's last four stages (its P2–P5 levels)."""
    if hasattr(body, "se_adapters"):
        return
    stages = list(body.stages)[-4:]
    blocks = nn.ModuleList(
        SEBlock(c, r, channels_last=body.nhwc)
        for c, r in zip(body.level_channels or [], REDUCTIONS, strict=True)
    )
    body.se_adapters = blocks
    for stage, block in zip(stages, blocks, strict=True):
        stage.register_forward_hook(block.as_hook)


@cache
def stage_problem(backbone: str) -> str | None:
    """Why ``backbone`` cannot take SE blocks after its stages (None: it can): its random-init
    body is built once (no weight file read) and inspected."""
    from benchmark.models.backbones import BACKBONES, Body

    body = BACKBONES.get(backbone)("none")
    if type(body)._levels is not Body._levels:
        return "its levels are not the outputs of its stages (a plain trunk with a pyramid)"
    if len(body.stages) < 4 or len(body.level_channels or []) != 4:
        return f"it has {len(body.stages)} stages, fewer than the 4 levels"
    return None


class _SEAdapted(Recipe):
    def adapt(self, model: Detector) -> None:
        insert_se(model.body)

    def rgn_parameters(self, model: Detector) -> list[tuple[str, nn.Parameter]]:
        """The backbone's own tensors: mind_back's RGN skips ``se_module``
        (tools/compute_rgn.py:57)."""
        return [(n, p) for n, p in model.body_parameters() if not n.startswith("se_adapters.")]

    def check(self, spec: RunSpec) -> None:
        why = stage_problem(spec.backbone.name)
        if why is not None:
            raise ConfigError(f"recipe {spec.recipe.name!r}: backbone.name="
                              f"{spec.backbone.name!r}: SE adapters go after stages; {why}")


@RECIPES.register("se_dp")
class SEDecoderProbe(_SEAdapted):
    """DP + SE: the decoder and the SE blocks train, every other backbone tensor is frozen
    (``requires_grad``, not detached: trainer.py:37-41, 144)."""

    PARAMS = {"lr": None}

    def configure(self, model: Detector, start_state: dict, importance: dict | None) -> None:
        insert_se(model.body)  # already there when built through load_detector (adapt)
        se = {id(p) for p in model.body.se_adapters.parameters()}
        for p in model.body.parameters():
            p.requires_grad_(id(p) in se)


@RECIPES.register("se_ft")
class SEFineTune(_SEAdapted):
    """FT of the whole network (past the body's freeze point), SE blocks included, from the
    ``se_dp`` checkpoint."""

    PARAMS: dict[str, Any] = {**Recipe.PARAMS, "dp_lr": None}

    def parent_recipe(self) -> RecipeSpec:
        dp_lr = self.params["dp_lr"]
        return RecipeSpec.make("se_dp", **({} if dp_lr is None else {"lr": dp_lr}))
