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
        # per anchored body tensor, in body_parameters() order: the parameter, θ0, and c·s
        # (a float for ``distance``, else a map expanded to the parameter's shape)
        self.params_: list[torch.nn.Parameter] = []
        self.anchors: list[torch.Tensor] = []
        self.scales: list[torch.Tensor | float] = []

    def configure(
        self, model: Detector, start_state: dict[str, torch.Tensor], importance: dict | None
    ) -> None:
        c = float(self.params["c"])
        weighting = self.params["weighting"]
        start_body = model.body_state(start_state)
        for name, p in model.body_parameters():
            self.params_.append(p)
            self.anchors.append(start_body[name].to(p.device))
            if weighting == "distance":
                self.scales.append(c)
                continue
            if importance is None or name not in importance[weighting]:
                self.scales.append(0.0)  # received no gradient at the start: not anchored
                continue
            s = importance[weighting][name].to(p.device)
            if s.dim() == 2 and p.dim() == 4:  # RGN: per (out, in), broadcast over taps
                s = s[:, :, None, None]
            self.scales.append((c * s).expand_as(p).contiguous())

    def after_backward(self, model: Detector, lr: float) -> None:
        """``grad += (θ − θ0) · clip(c·s, 0, 1/lr)`` for every body tensor with a gradient,
        as a few fused ``torch._foreach_*`` calls instead of a Python loop of small ops (the
        same element-wise operations in the same order: the same numbers)."""
        with torch.no_grad():
            for maps in (False, True):
                idx = [i for i, (p, s) in enumerate(zip(self.params_, self.scales, strict=True))
                       if p.grad is not None and isinstance(s, torch.Tensor) == maps]
                if not idx:
                    continue
                diffs = torch._foreach_sub([self.params_[i] for i in idx],
                                           [self.anchors[i] for i in idx])
                if maps:
                    coefs = torch._foreach_clamp_min([self.scales[i] for i in idx], 0.0)
                    torch._foreach_clamp_max_(coefs, 1.0 / lr)
                    torch._foreach_mul_(diffs, coefs)
                else:
                    torch._foreach_mul_(diffs, [min(max(self.scales[i], 0.0), 1.0 / lr)
                                                for i in idx])
                torch._foreach_add_([self.params_[i].grad for i in idx], diffs)
