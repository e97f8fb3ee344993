"""FT: fine-tune everything (past the backbone's freeze point) from the pretrained weights."""

from benchmark.recipes.base import RECIPES, Recipe


@RECIPES.register("ft")
class FineTune(Recipe):
    pass
