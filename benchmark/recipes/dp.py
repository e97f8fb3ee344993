"""DP, decoder probing: the backbone's outputs are detached; only FPN, RPN and ROI heads train."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmark.recipes.base import RECIPES, Recipe

if TYPE_CHECKING:
    from benchmark.models import Detector


@RECIPES.register("dp")
class DecoderProbe(Recipe):
    PARAMS = {"lr": None}

    def configure(self, model: Detector, start_state: dict, importance: dict | None) -> None:
        model.set_detach_body(True)
        for p in model.body.parameters():
            p.requires_grad_(False)
