"""Squeeze-and-excitation adapters (Saito et al., "Mind the Backbone"): an SE block after each
of the body's four level stages, trained with the decoder first (``se_dp``), then the whole
network fine-tuned with them (``se_ft``, whose parent is ``se_dp``).

As the study's code (VisionLearningGroup/mind_back@5e6694f):

- the block is ``SEModule`` (``src/modeling/backbone/senet.py:56-76``): x · σ(fc2(relu(fc1(
  mean_hw(x))))) with 1×1 convs, one after each stage ``layer1``–``layer4``, whose output
  feeds the next stage (``SENetResNet.forward_features``, senet.py:634-641);
- reduction 4, 8, 16, 32 from the stride-4 level to the stride-32 one (senet.py:564, 577,
  589, 601; ConvNeXt alike, ``convnext.py:236`` ``2 ** (i + 2)``);
- initialisation, by the body the blocks go into, as the study's two SE backbones do:
  after a ResNet's stages ``_weight_init`` (senet.py:48-53, applied at 606-607):
  Kaiming-normal (fan_out, relu) conv kernels, the convs' biases left at PyTorch's default
  uniform draw; after a ConvNeXt's stages (timm ``ConvNeXtStage``) ``ConvNeXt._init_weights``
  (``src/modeling/backbone/convnext.py:244, 248-251``, applied to the whole network, the
  ``se_modules`` built at line 236 included): truncated normal, std 0.02, zero biases. The
  bodies the study puts no SE block on (EfficientNet, Swin) take the ResNet rule. So **the
  body's output is not unchanged at initialisation**: every level is scaled per channel by a
  gate in (0, 1) (≈ 0.5 on average), the next stages see the scaled maps, and the decoder
  trained with the blocks learns on that (tested);
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

``se_ft`` with a ``weighting`` (``distance``, ``ewc``, ``rgn``; coefficient ``c``, default
0.1) is the study's headline combination, SE adapters fine-tuned with the regularised pull
of ``reg_ft`` (:class:`~benchmark.recipes.reg_ft.PullToStart`): mind_back's TRAIN.md, "Train
with RGN regularization", ``MODEL.PRETRAIN_NAME fbnet_senet MODEL.WEIGHTS path_model
TRAIN.REG.RGN True SOLVER.COEFF 0.1`` — the SE network from the SE-pretrained checkpoint
(here the ``se_dp`` parent), its backbone anchored there (trainer.py:75-86, the reference
model loaded from the same weights), the SE blocks not anchored (utils.py:86).
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING, Any

from benchmark.errors import ConfigError
from benchmark.recipes.base import RECIPES, Recipe
from benchmark.recipes.reg_ft import PullToStart, RegularisedFineTune, check_weighting
from benchmark.spec import RecipeSpec, RunSpec

if TYPE_CHECKING:
    from torch import nn

    from benchmark.models import Detector
    from benchmark.models.backbones import Body

#: reduction of the SE block after level i (strides 4, 8, 16, 32): mind_back@5e6694f
#: src/modeling/backbone/senet.py:564, 577, 589, 601 (4, 8, 16, 32)
REDUCTIONS = (4, 8, 16, 32)


def study_init(body: Body) -> str:
    """How the study initialises SE blocks on this body: ``trunc_normal`` after ConvNeXt
    stages (convnext.py:244-251), ``kaiming`` otherwise (senet.py:48-53)."""
    convnext = any(type(s).__name__ == "ConvNeXtStage" for s in body.stages)
    return "trunc_normal" if convnext else "kaiming"


def insert_se(body: Body) -> None:
    """An SE block after each of the body's last four stages (its P2–P5 levels)."""
    from torch import nn

    from benchmark.recipes.se_block import SEBlock

    if hasattr(body, "se_adapters"):
        return
    stages = list(body.stages)[-4:]
    init = study_init(body)
    blocks = nn.ModuleList(
        SEBlock(c, r, channels_last=body.nhwc, init=init)
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
    ``se_dp`` checkpoint; with a ``weighting``, the backbone's own tensors pulled back to
    that checkpoint as ``reg_ft`` does (the study's SE + RGN recipe)."""

    PARAMS: dict[str, Any] = {**Recipe.PARAMS, "dp_lr": None, "weighting": None, "c": None}
    RANGES = {**Recipe.RANGES, "c": (0.0, math.inf, True)}

    def __init__(self, spec: RecipeSpec) -> None:
        super().__init__(spec)
        weighting, c = self.params["weighting"], self.params["c"]
        self.pull: PullToStart | None = None
        if weighting is None:
            if c is not None:
                raise ConfigError(f"recipe 'se_ft': c={c!r} needs a weighting "
                                  "(distance, ewc or rgn)")
            return
        check_weighting("se_ft", weighting)
        default_c = RegularisedFineTune.PARAMS["c"]
        self.pull = PullToStart(weighting, float(default_c if c is None else c))
        self.needs_importance = self.pull.needs_importance

    def parent_recipe(self) -> RecipeSpec:
        dp_lr = self.params["dp_lr"]
        return RecipeSpec.make("se_dp", **({} if dp_lr is None else {"lr": dp_lr}))

    def configure(self, model: Detector, start_state: dict, importance: dict | None) -> None:
        if self.pull is not None:  # the SE blocks are not among rgn_parameters: not anchored
            self.pull.configure(self.rgn_parameters(model), model.body_state(start_state),
                                importance)

    def after_backward(self, model: Detector, lr: float) -> None:
        if self.pull is not None:
            self.pull.apply(lr)
