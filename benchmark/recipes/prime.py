"""PRIME fine-tuning (Yamada & Otani): FT with every training image augmented by PRIME
(Modas et al.; :mod:`benchmark.data.prime` holds the primitives, their defaults and how boxes
follow the spatial one). Every draw comes from the loop's per-iteration generator, so a
resumed run takes the same steps.

Parameters: ``variant`` — ``imagenet`` (default: PRIME's ImageNet configuration, spatial
primitive included) or ``study`` (the transfer study's detection runner: colour and spectral
primitives, one per chain; :mod:`benchmark.data.prime`); ``scale`` — the white level the
primitives see (1, or 255 for the study's 0–255 arithmetic); ``optimizer`` as every recipe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmark.errors import ConfigError
from benchmark.recipes.base import RECIPES, Recipe
from benchmark.spec import RecipeSpec

if TYPE_CHECKING:
    import torch


@RECIPES.register("prime_ft")
class PrimeFineTune(Recipe):
    PARAMS: dict[str, Any] = {**Recipe.PARAMS, "variant": "imagenet", "scale": 1.0}
    RANGES = {**Recipe.RANGES, "scale": (0.0, float("inf"), False)}

    def __init__(self, spec: RecipeSpec) -> None:
        from benchmark.data.prime import VARIANTS

        super().__init__(spec)
        if self.params["variant"] not in VARIANTS:
            raise ConfigError(f"recipe {spec.name!r}: variant={self.params['variant']!r}: "
                              f"must be one of {', '.join(VARIANTS)}")

    def transform_batch(
        self,
        images: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]],
        generator: torch.Generator,
    ) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
        from benchmark.data.prime import prime

        variant, scale = str(self.params["variant"]), float(self.params["scale"])
        out_images, out_targets = [], []
        for image, target in zip(images, targets, strict=True):
            image, boxes = prime(image, target["boxes"], generator, variant=variant,
                                 scale=scale)
            out_images.append(image)
            out_targets.append({**target, "boxes": boxes})
        return out_images, out_targets
