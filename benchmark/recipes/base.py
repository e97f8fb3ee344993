"""The recipe interface and its registry: :class:`Recipe`, ``RECIPES``, :func:`get_recipe`,
:func:`parent_of`, :func:`stages`, the optimizers and the parameter ranges every recipe
checks against.

A recipe decides (a) which parameters train and with what lr, (b) extra loss terms,
(c) gradient changes after backward, (d) stage structure (the run it starts from),
(e) post-hoc weight operations, (f) the detector's structure (modules it adds, e.g. adapters)
and (g) training-batch augmentation. Recipe modules import from here, never from the
package face (which imports them all to register them).
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from benchmark.errors import ConfigError
from benchmark.registry import Registry
from benchmark.spec import RecipeSpec, RunSpec, Schedule

if TYPE_CHECKING:
    import torch

    from benchmark.models import Detector


#: (lowest, highest, lowest allowed?) of numeric parameters, by name, for every recipe; a
#: recipe with parameters of its own adds theirs to its ``RANGES``
RANGES: dict[str, tuple[float, float, bool]] = {
    "lr": (0.0, math.inf, False),
    "dp_lr": (0.0, math.inf, False),
    "backbone_lr_mult": (0.0, math.inf, True),
}


def _check_range(recipe: str, key: str, value: Any, rng: tuple[float, float, bool]) -> None:
    low, high, low_ok = rng
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and (value > low or (low_ok and value == low)) and value <= high:
        return
    lo = f"{'>=' if low_ok else '>'} {low:g}"
    allowed = f"a number {lo}" + ("" if high == math.inf else f" and <= {high:g}")
    raise ConfigError(f"recipe {recipe!r}: {key}={value!r}: must be {allowed}")


#: optimizers a recipe's ``optimizer`` parameter may name (:func:`build_optimizer`)
OPTIMIZERS = ("sgd", "adamw")


def build_optimizer(name: str, groups: list[dict[str, Any]], lr: float,
                    schedule: Schedule) -> torch.optim.Optimizer:
    """``sgd``: SGD with the schedule's momentum and weight decay. ``adamw``: AdamW with the
    schedule's weight decay and torch's default betas (0.9, 0.999), eps 1e-8 — mmdetection's
    Swin detectors (runopti/RobustDownstreamTransfer@a67aae8 ``mmdetection/configs/swin/
    mask_rcnn_swin-t-p4-w7_fpn_ms-crop-2x_coco.py:77-82``: ``type='AdamW', lr=0.0001,
    betas=(0.9, 0.999), weight_decay=0.05``; mmcv builds ``torch.optim.AdamW`` from it, eps
    left at torch's default: open-mmlab/mmcv@f4167fe1 ``mmcv/runner/optimizer/builder.py:
    14-27``). A group's own ``weight_decay`` overrides the schedule's."""
    import torch

    if name == "adamw":  # the recipe checked ``name`` against OPTIMIZERS
        return torch.optim.AdamW(groups, lr=lr, weight_decay=schedule.weight_decay)
    return torch.optim.SGD(
        groups, lr=lr, momentum=schedule.momentum, weight_decay=schedule.weight_decay
    )


class Recipe:
    #: parameters this recipe accepts (name → default); others are rejected at grid load
    PARAMS: dict[str, Any] = {"lr": None, "backbone_lr_mult": 1.0, "optimizer": "sgd"}
    #: allowed ranges of this recipe's numeric parameters (see :data:`RANGES`)
    RANGES: dict[str, tuple[float, float, bool]] = RANGES

    def __init__(self, spec: RecipeSpec) -> None:
        unknown = sorted(set(dict(spec.params)) - set(self.PARAMS))
        if unknown:
            raise ConfigError(
                f"recipe {spec.name!r}: unknown parameter {unknown[0]!r} "
                f"(accepted: {', '.join(sorted(self.PARAMS))})"
            )
        for key, value in spec.params:
            if value is not None and key in self.RANGES:
                _check_range(spec.name, key, value, self.RANGES[key])
        self.spec = spec
        self.params = {**self.PARAMS, **dict(spec.params)}
        if self.params.get("optimizer", "sgd") not in OPTIMIZERS:
            raise ConfigError(f"recipe {spec.name!r}: optimizer={self.params['optimizer']!r}: "
                              f"must be one of {', '.join(OPTIMIZERS)}")

    def lr(self, schedule_lr: float) -> float:
        return float(self.params["lr"] or schedule_lr)

    def check(self, spec: RunSpec) -> None:
        """Reject, at grid validation, a cell this recipe cannot serve (e.g. a backbone
        without attention): raise :class:`ConfigError` naming the field and the value. Must
        not need data or weight files."""

    def canonical(self) -> RecipeSpec:
        """The cell this recipe *is*: an alias's registered name (``lp_ft`` → ``dp_ft``), or
        another recipe whose weights equal this one's by construction (WiSE-FT at α = 0 is
        the DP cell). A grid expands to the canonical spec, so equal cells share one
        fingerprint: one training, one evaluation."""
        return RecipeSpec(ALIASES.get(self.spec.name, self.spec.name), self.spec.params)

    # (d) stage structure
    def parent_recipe(self) -> RecipeSpec | None:
        return None

    #: whether configure() needs the importance maps measured at the start weights
    needs_importance = False

    #: False: this stage trains nothing; its weights are :meth:`finalize` applied to the
    #: parent's final weights with the parent's start weights as ``start_state`` (WiSE-FT:
    #: one DP-FT training, any number of mixing coefficients): the pipeline's mixing stage
    trains = True

    #: the parameter a grid sweeps to trace a curve between two cells (WiSE-FT's ``alpha``),
    #: or None: the report draws one curve per backbone through its values, its default in
    #: :attr:`PARAMS` and its end points the ends of its range in :attr:`RANGES`
    SWEEP: str | None = None

    # (a) what trains
    def configure(
        self,
        model: Detector,
        start_state: dict[str, torch.Tensor],
        importance: dict[str, dict[str, torch.Tensor]] | None,
    ) -> None:
        """Called once before the optimizer is built (also when resuming).

        ``start_state``: the model's state dict at the start of this training stage (θ0);
        ``importance``: {"rgn"|"ewc": {body tensor name: map}} when ``needs_importance``.
        """

    def param_groups(self, model: Detector, lr: float) -> list[dict[str, Any]]:
        body = [p for _, p in model.body_parameters()]
        decoder = [p for _, p in model.decoder_parameters()]
        groups = [{"params": decoder, "lr": lr, "name": "decoder"}]
        mult = float(self.params.get("backbone_lr_mult", 1.0))
        if body and mult > 0:
            groups.append({"params": body, "lr": lr * mult, "name": "backbone"})
        return groups

    def optimizer(
        self, groups: list[dict[str, Any]], lr: float, schedule: Schedule
    ) -> torch.optim.Optimizer:
        """The optimizer over :meth:`param_groups` (default: the suite's SGD with the
        schedule's momentum and weight decay; a recipe's ``optimizer`` parameter may name
        another, :func:`build_optimizer`; the relevance study's recipe takes AdamW)."""
        return build_optimizer(self.params.get("optimizer", "sgd"), groups, lr, schedule)

    def rgn_parameters(self, model: Detector) -> list[tuple[str, torch.nn.Parameter]]:
        """The body tensors RGN (and the importance maps) are measured over: every trainable
        backbone tensor; a recipe that adds modules to the body leaves them out."""
        return model.body_parameters()

    # (b) extra loss terms
    def extra_losses(
        self, model: Detector, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Loss terms added to the detector's on this step's batch (after the detector's own
        forward on it, in the same autograd graph)."""
        return {}

    # (c) gradient modifications
    def after_backward(self, model: Detector, lr: float) -> None:
        """Called after backward, before the optimizer step."""

    # (f) the detector's structure
    def adapt(self, model: Detector) -> None:
        """Change the detector's modules (e.g. insert adapters) right after it is built and
        before any checkpoint is loaded into it: every build of this recipe's detector —
        training, resuming, evaluation — goes through it, so saved state dicts match."""

    # (g) training-batch augmentation
    def transform_batch(
        self,
        images: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]],
        generator: torch.Generator,
    ) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
        """A training batch as the detector sees it (images in [0, 1], RGB). ``generator``
        is seeded from (run seed, iteration): every draw must come from it, so a resumed run
        takes the same steps."""
        return images, targets

    # (e) post-hoc weight operations
    def finalize(self, model: Detector, start_state: dict[str, torch.Tensor]) -> None:
        """Called on the final weights (e.g. WiSE-FT averaging with ``start_state``)."""


RECIPES: Registry[type[Recipe]] = Registry("recipe")
#: other names of registered recipes (a field's name for one of ours): alias → name
ALIASES: dict[str, str] = {}


def get_recipe(spec: RecipeSpec) -> Recipe:
    return RECIPES.get(spec.name)(spec)


@lru_cache(maxsize=65536)
def parent_of(spec: RunSpec) -> RunSpec | None:
    """The run whose final checkpoint ``spec`` starts from (DP-FT → DP), if any: the same
    cell with the recipe's ``parent_recipe``."""
    parent_recipe = get_recipe(spec.recipe).parent_recipe()
    return None if parent_recipe is None else replace(spec, recipe=parent_recipe)


def stages(spec: RunSpec) -> list[RunSpec]:
    """The stages ``spec``'s weights come from, in the order they run: its ancestors
    (:func:`parent_of`, the oldest first), then ``spec`` itself — DP-FT: [DP, DP-FT];
    WiSE-FT: [DP, DP-FT, the mix]. A stage whose recipe :attr:`~Recipe.trains` is a training
    started from the final weights of the stage before it; one that trains nothing mixes the
    stage before it with the weights that stage started from."""
    chain = [spec]
    while (parent := parent_of(chain[0])) is not None:
        chain.insert(0, parent)
    return chain
