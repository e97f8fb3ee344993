"""WiSE-FT for detectors: DP-FT, then every weight is averaged with the DP checkpoint it
started from, θ = (1 − α)·θ_DP + α·θ_FT (α = 0.5 by default). Starting from DP gives θ0 a
trained decoder, so the average interpolates two working detectors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from benchmark.recipes import RECIPES
from benchmark.recipes.dp_ft import DecoderProbeThenFineTune

if TYPE_CHECKING:
    from benchmark.models import Detector


@RECIPES.register("wise_ft")
class WiseFineTune(DecoderProbeThenFineTune):
    PARAMS: dict[str, Any] = {**DecoderProbeThenFineTune.PARAMS, "alpha": 0.5}
    RANGES = {**DecoderProbeThenFineTune.RANGES, "alpha": (0.0, 1.0, True)}

    def finalize(self, model: Detector, start_state: dict[str, torch.Tensor]) -> None:
        alpha = float(self.params["alpha"])
        current = model.state_dict()
        mixed = {
            k: (1 - alpha) * start_state[k].to(v.device) + alpha * v if v.is_floating_point() else v
            for k, v in current.items()
        }
        model.load_state_dict(mixed)
