"""Regularised FT ("Mind the Backbone"): DP-FT whose backbone is pulled back to its start
weights θ0 after every backward, before the optimizer step:

    grad += (θ − θ0) · clip(c · s, 0, 1/lr)

with ``weighting`` choosing s: ``distance`` (s = 1, L2-SP-like), ``ewc`` (s = mean |g| over
the start batches, element-wise) or ``rgn`` (s = the element-wise RGN map, one value per
(out, in) pair of a conv kernel, broadcast over its spatial taps). s is measured once at the
start weights (the DP checkpoint) over min(``schedule.importance_batches``, |train| / batch)
batches (mind_back's ITER_GRAD_COMP = 5000, src/engine/config.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from benchmark.errors import ConfigError
from benchmark.recipes import RECIPES
from benchmark.recipes.dp_ft import DecoderProbeThenFineTune

if TYPE_CHECKING:
    from benchmark.models import Detector

WEIGHTINGS = ("distance", "ewc", "rgn")


@RECIPES.register("reg_ft")
class RegularisedFineTune(DecoderProbeThenFineTune):
    PARAMS: dict[str, Any] = {**DecoderProbeThenFineTune.PARAMS, "c": 0.1, "weighting": "rgn"}
    RANGES = {**DecoderProbeThenFineTune.RANGES, "c": (0.0, math.inf, True)}

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        if self.params["weighting"] not in WEIGHTINGS:
            raise ConfigError(
                f"recipe 'reg_ft': weighting={self.params['weighting']!r}: "
                f"must be one of {', '.join(WEIGHTINGS)}"
            )
        self.needs_importance = self.params["weighting"] != "distance"
        self.anchor: dict[str, torch.Tensor] = {}
        self.scale: dict[str, torch.Tensor | float] = {}

    def configure(
        self, model: Detector, start_state: dict[str, torch.Tensor], importance: dict | None
    ) -> None:
        c = float(self.params["c"])
        weighting = self.params["weighting"]
        start_body = model.body_state(start_state)
        for name, p in model.body_parameters():
            self.anchor[name] = start_body[name].to(p.device)
            if weighting == "distance":
                self.scale[name] = c
                continue
            if importance is None or name not in importance[weighting]:
                self.scale[name] = 0.0  # received no gradient at the start: not anchored
                continue
            s = importance[weighting][name].to(p.device)
            if s.dim() == 2 and p.dim() == 4:  # RGN: per (out, in), broadcast over taps
                s = s[:, :, None, None]
            self.scale[name] = c * s

    def after_backward(self, model: Detector, lr: float) -> None:
        with torch.no_grad():
            for name, p in model.body_parameters():
                if p.grad is None:
                    continue
                coef = self.scale[name]
                coef = (
                    min(max(coef, 0.0), 1.0 / lr)
                    if isinstance(coef, float)
                    else coef.clamp(0.0, 1.0 / lr)
                )
                p.grad.add_((p - self.anchor[name]) * coef)
