"""PRIME fine-tuning (Yamada & Otani): FT with every training image augmented by PRIME
(Modas et al.; :mod:`benchmark.data.prime` holds the primitives, their defaults and how boxes
follow the spatial one). Every draw comes from the loop's per-iteration generator, so a
resumed run takes the same steps."""

from __future__ import annotations

import torch

from benchmark.data.prime import prime
from benchmark.recipes import RECIPES, Recipe


@RECIPES.register("prime_ft")
class PrimeFineTune(Recipe):
    def transform_batch(
        self,
        images: list[torch.Tensor],
        targets: list[dict[str, torch.Tensor]],
        generator: torch.Generator,
    ) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
        out_images, out_targets = [], []
        for image, target in zip(images, targets, strict=True):
            image, boxes = prime(image, target["boxes"], generator)
            out_images.append(image)
            out_targets.append({**target, "boxes": boxes})
        return out_images, out_targets
