"""Regularised FT ("Mind the Backbone"): DP-FT whose backbone is pulled back to its start
weights θ0 after every backward, before the optimizer step:

    grad += (θ − θ0) · k,   k = c (``distance``),   k = clip(c · s, 0, 1/lr) (``ewc``, ``rgn``)

with ``weighting`` choosing s: ``distance`` (s = 1, L2-SP-like), ``ewc`` (s = mean |g| over
the start batches, element-wise) or ``rgn`` (s = the element-wise RGN map, one value per
(out, in) pair of a conv kernel, broadcast over its spatial taps). s is measured once at the
start weights (the DP checkpoint) over min(``schedule.importance_batches``, |train| / batch)
batches (mind_back's ITER_GRAD_COMP = 5000, src/engine/config.py).

As the study's ``gradient_modifier`` (VisionLearningGroup/mind_back@5e6694f
tools/utils.py:84-98): ``PLAIN_DIST`` scales by ``SOLVER.COEFF`` unclipped (lines 88-89), the
importance-weighted forms clip ``COEFF · s`` to [0, 1/lr] (line 97) with the lr of the first
parameter group at that step (trainer.py:116-118). The anchored tensors are
:meth:`~benchmark.recipes.Recipe.rgn_parameters` — every trainable body tensor, minus the SE
adapters where a recipe adds them (utils.py:86: ``'se_module' not in name``).
:class:`PullToStart` is the pull on its own, for a recipe that composes it (``se_ft`` with a
``weighting``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from benchmark.errors import ConfigError
from benchmark.recipes.base import RECIPES
from benchmark.recipes.dp_ft import DecoderProbeThenFineTune

if TYPE_CHECKING:
    import torch

    from benchmark.models import Detector

WEIGHTINGS = ("distance", "ewc", "rgn")


def check_weighting(recipe: str, weighting: Any) -> None:
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"recipe {recipe!r}: weighting={weighting!r}: "
                          f"must be one of {', '.join(WEIGHTINGS)}")


class PullToStart:
    """``grad += (θ − θ0) · k`` over a fixed list of tensors (see the module docstring)."""

    def __init__(self, weighting: str, c: float) -> None:
        self.weighting, self.c = weighting, c
        # per anchored tensor, in the order given to configure(): the parameter, θ0, and k
        # (a float for ``distance`` — c — or for a tensor without a map — 0 —, else c·s
        # expanded to the parameter's shape, clipped at each step)
        self.params_: list[torch.nn.Parameter] = []
        self.anchors: list[torch.Tensor] = []
        self.scales: list[torch.Tensor | float] = []

    @property
    def needs_importance(self) -> bool:
        return self.weighting != "distance"

    def configure(self, named: list[tuple[str, torch.nn.Parameter]],
                  start_body: dict[str, torch.Tensor], importance: dict | None) -> None:
        """Anchor ``named`` (body-relative names) at ``start_body``, weighted by
        ``importance[weighting]`` (maps by name) unless the weighting is ``distance``."""
        for name, p in named:
            self.params_.append(p)
            self.anchors.append(start_body[name].to(p.device))
            if self.weighting == "distance":
                self.scales.append(self.c)
                continue
            if importance is None or name not in importance[self.weighting]:
                self.scales.append(0.0)  # received no gradient at the start: not anchored
                continue
            s = importance[self.weighting][name].to(p.device)
            if s.dim() == 2 and p.dim() == 4:  # RGN: per (out, in), broadcast over taps
                s = s[:, :, None, None]
            self.scales.append((self.c * s).expand_as(p).contiguous())

    def apply(self, lr: float) -> None:
        """The pull on every anchored tensor with a gradient, as a few fused
        ``torch._foreach_*`` calls instead of a Python loop of small ops (the same
        element-wise operations in the same order: the same numbers)."""
        import torch

        with torch.no_grad():
            for maps in (False, True):
                idx = [i for i, (p, s) in enumerate(zip(self.params_, self.scales, strict=True))
                       if p.grad is not None and isinstance(s, torch.Tensor) == maps]
                if not idx:
                    continue
                diffs = torch._foreach_sub([self.params_[i] for i in idx],
                                           [self.anchors[i] for i in idx])
                if maps:  # utils.py:97: clip(COEFF · s, 0, 1/lr)
                    coefs = torch._foreach_clamp_min([self.scales[i] for i in idx], 0.0)
                    torch._foreach_clamp_max_(coefs, 1.0 / lr)
                    torch._foreach_mul_(diffs, coefs)
                else:  # utils.py:88-89: COEFF as it is (c >= 0: RANGES)
                    torch._foreach_mul_(diffs, [float(self.scales[i]) for i in idx])
                torch._foreach_add_([self.params_[i].grad for i in idx], diffs)


@RECIPES.register("reg_ft")
class RegularisedFineTune(DecoderProbeThenFineTune):
    PARAMS: dict[str, Any] = {**DecoderProbeThenFineTune.PARAMS, "c": 0.1, "weighting": "rgn"}
    RANGES = {**DecoderProbeThenFineTune.RANGES, "c": (0.0, math.inf, True)}

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        check_weighting("reg_ft", self.params["weighting"])
        self.pull = PullToStart(self.params["weighting"], float(self.params["c"]))
        self.needs_importance = self.pull.needs_importance

    @property
    def anchors(self) -> list[torch.Tensor]:
        return self.pull.anchors

    @property
    def scales(self) -> list[torch.Tensor | float]:
        return self.pull.scales

    def configure(
        self, model: Detector, start_state: dict[str, torch.Tensor], importance: dict | None
    ) -> None:
        self.pull.configure(self.rgn_parameters(model), model.body_state(start_state),
                            importance)

    def after_backward(self, model: Detector, lr: float) -> None:
        self.pull.apply(lr)
