"""WiSE-FT for detectors, as a sweep: θ = (1 − α)·θ_DP + α·θ_FT between the DP checkpoint
and the DP-FT weights fine-tuned from it (α = 0.5 by default, the value Xiao et al. report
for their WiSE-FT baseline: Xiao et al., "Masked Images Are Counterfactual Samples for
Robust Fine-tuning", CVPR 2023, Sec. 4).

The stage trains nothing (:attr:`Recipe.trains` False: the pipeline's mixing stage): its
parent is DP-FT with the same ``lr`` / ``dp_lr``, so every α of a grid —
``{name: wise_ft, alpha: [0, 0.25, 0.5, 0.75, 1]}`` expands to one cell per α — shares one
DP and one DP-FT training, and each α costs a weight average and an evaluation. The mixing
stage hands :meth:`finalize` the DP-FT final weights and the weights DP-FT started from
(DP's final checkpoint). Starting from DP gives θ_DP a trained
decoder, so the average interpolates two working detectors. α = 0 gives DP's weights and
α = 1 DP-FT's, bit for bit: (1 − α)·a + α·b is exact at both ends (``torch.lerp`` is not) —
so a grid's α = 0 and α = 1 *are* the DP and DP-FT cells (:meth:`WiseFineTune.canonical`),
and the report's sweep curve takes its end points from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmark.recipes.base import RECIPES, Recipe
from benchmark.spec import RecipeSpec

if TYPE_CHECKING:
    import torch

    from benchmark.models import Detector


@RECIPES.register("wise_ft")
class WiseFineTune(Recipe):
    PARAMS: dict[str, Any] = {**Recipe.PARAMS, "dp_lr": None, "alpha": 0.5}
    RANGES = {**Recipe.RANGES, "alpha": (0.0, 1.0, True)}
    trains = False
    SWEEP = "alpha"  # the report's sweep curve: α from 0 (DP) to 1 (DP-FT)

    def canonical(self) -> RecipeSpec:
        """α = 0 is the DP cell and α = 1 the DP-FT cell (the mix is exact at both ends): a
        sweep's end points are those cells, trained and evaluated once."""
        alpha = float(self.params["alpha"])
        if alpha == 1:
            return self.parent_recipe()
        if alpha == 0:
            dp = RECIPES.get("dp_ft")(self.parent_recipe()).parent_recipe()
            assert dp is not None
            return dp
        return self.spec

    def parent_recipe(self) -> RecipeSpec:
        """DP-FT with this recipe's training parameters (α is not one of them)."""
        params = {k: v for k, v in self.spec.params if k != "alpha"}
        return RecipeSpec.make("dp_ft", **params)

    def finalize(self, model: Detector, start_state: dict[str, torch.Tensor]) -> None:
        alpha = float(self.params["alpha"])
        current = model.state_dict()
        mixed = {
            k: (1 - alpha) * start_state[k].to(v.device) + alpha * v if v.is_floating_point() else v
            for k, v in current.items()
        }
        model.load_state_dict(mixed)
