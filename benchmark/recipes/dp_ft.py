"""DP-FT: FT starting from the DP checkpoint (the detection analogue of LP-FT)."""

from __future__ import annotations

from typing import Any

from benchmark.recipes.base import RECIPES, Recipe
from benchmark.spec import RecipeSpec


@RECIPES.register("dp_ft")
class DecoderProbeThenFineTune(Recipe):
    PARAMS: dict[str, Any] = {**Recipe.PARAMS, "dp_lr": None}

    def parent_recipe(self) -> RecipeSpec:
        dp_lr = self.params["dp_lr"]
        return RecipeSpec.make("dp", **({} if dp_lr is None else {"lr": dp_lr}))
