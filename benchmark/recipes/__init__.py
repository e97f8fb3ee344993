"""Fine-tuning recipes behind one small interface (:mod:`benchmark.recipes.base`).

Adding a recipe = one module with a :class:`Recipe` subclass decorated by
``@RECIPES.register("name")`` (both from :mod:`benchmark.recipes.base`), imported below so
that the package face sees every recipe.
"""

from benchmark.recipes import (  # noqa: F401  (registration)
    distill,
    dp,
    dp_ft,
    fixed_features,
    ft,
    prime,
    reg_ft,
    relevance,
    se_adapters,
    wise_ft,
)
from benchmark.recipes.base import (
    ALIASES,
    OPTIMIZERS,
    RANGES,
    RECIPES,
    Recipe,
    build_optimizer,
    get_recipe,
    parent_of,
)

__all__ = ["ALIASES", "OPTIMIZERS", "RANGES", "RECIPES", "Recipe", "build_optimizer",
           "get_recipe", "parent_of"]
