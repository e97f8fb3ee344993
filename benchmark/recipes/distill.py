"""Masked counterfactual feature distillation (Xiao et al., CVPR 2023, "Masked Images Are
Counterfactual Samples for Robust Fine-tuning"; code Coxy7/robust-finetuning@fa8702ff,
cited below as ``rf``) and its baselines ``ft_kd`` and ``lp_ft``.

``cf_kd``: every step, chosen patches of the batch tensor the body sees are replaced by
the same patches of another image of the batch; the fine-tuned body's features on that
counterfactual image are pulled (MSE × ``weight``) towards those of the frozen body it
started from, on the same counterfactual image. Detector adaptations:

* **The map that chooses the patches** is the ground-truth boxes: a patch's score is the
  fraction of it the boxes cover, divided by the image's highest score as rf divides its CAM
  (utils/masking.py:163), then thresholded (masking.py:164). rf takes the CAM (attention
  rollout of the true class's logit, masking.py:40-67) — class evidence for the labelled
  object. A detector has no image-level class logit; its labelled objects are the boxes, so
  "object patches" are the patches under the boxes. Two differences: the map is the labels',
  not a model's (rf computes it with the model being fine-tuned, main_distill.py:236, the
  brief asked for the frozen start: the boxes are the same for both); and it costs nothing.
* **Patches** are ``patch`` × ``patch`` pixels of the body's input, tiled from the top-left
  corner: 32 as rf's CLIP ViT-B/32 (example.sh:27, one token per 32 px), which is also the
  body's P5 stride.
* **Fill**: one other image of the batch for every image (rf's single fill,
  masking.py:169-170), chosen by a random non-zero cyclic shift as rf's multi-fill does
  (masking.py:191-192) rather than rf's ``randperm`` (which leaves an image unchanged with
  probability 1/2 at the demo's batch of 2 per process). A process with a batch of one fills
  with 0, the pixel mean after normalisation (rf's no-fill variants mask instead). The draw
  uses torch's global RNG, which the loop seeds per iteration.
* **Features** are the body's outputs P3–P5 (``Body.forward``; what the FPN consumes, plus P2
  on the ``frcnn_fpn`` geometry, left out), MSE averaged over the three levels; rf
  distils the image embedding (MSELoss, main_distill.py:160; weight 30, main_distill.py:47).
* **Scale**: with ``relative`` (default) each level's MSE is divided by the mean square of
  the teacher's features on it. rf's embedding is CLIP's projected image feature, trained
  with AdamW and gradient clipping 1 (main_distill.py:61, 66); a CNN body's maps are
  unnormalised (mean square 7-98 on the demo's EfficientNet-Lite0 levels) and the plain
  MSE at weight 30 under the suite's SGD (lr 0.002) diverged within 3 steps (distillation
  loss 0.3 → 91 → 6655 → 1.4e5, measured); the relative error keeps weight 30 meaningful
  across bodies. ``relative: false`` gives rf's plain MSE.
* **Teacher**: the body at the start of this training stage (rf: the zero-shot model,
  run.sh:60), frozen, in eval mode.

Limits: the extra body calls run outside DDP (``Trainer._forward``): their gradients add to
the same ``.grad`` but this is not tested with more than one process. A body with
train-mode BatchNorm (``resnet*`` from scratch) updates its statistics on the counterfactual
batch too.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from benchmark.errors import ConfigError
from benchmark.recipes.base import ALIASES, RECIPES, Recipe
from benchmark.recipes.dp_ft import DecoderProbeThenFineTune
from benchmark.recipes.patches import BatchCapture, box_mask, patch_coverage, to_pixels

if TYPE_CHECKING:
    import torch

    from benchmark.models import Detector

#: rf main_distill.py:47 (--w_distill 30)
DISTILL_WEIGHT = 30.0
#: rf example.sh:27 ObjMaskSingleFill(0.3), :28 CtxMaskSingleFill(0.5) (CAM thresholds)
THRESHOLDS = {"object": 0.3, "context": 0.5}
#: rf example.sh:27 / README: clip_ViT-B/32, one token per 32 × 32 pixels
PATCH = 32

# LP-FT is the classification name of DP-FT (probe the head, then fine-tune everything):
# an alias — a grid's ``lp_ft`` becomes ``dp_ft`` (``Recipe.canonical``), so the
# two names are one cell with one fingerprint, never two trainings of the same thing
RECIPES.register("lp_ft")(DecoderProbeThenFineTune)
ALIASES["lp_ft"] = "dp_ft"


def counterfactual(x: torch.Tensor, chosen: torch.Tensor, patch: int,
                   source: torch.Tensor | None) -> torch.Tensor:
    """``x`` (N, C, H, W) with the ``chosen`` cells (N, gh, gw) of each image replaced by the
    same cells of image ``source[i]`` (0 where ``source`` is None)."""
    import torch

    mask = to_pixels(chosen, patch, *x.shape[-2:])
    fill = torch.zeros_like(x) if source is None else x[source]
    return torch.where(mask, fill, x)


def chosen_patches(boxes: list[torch.Tensor], height: int, width: int, patch: int,
                   threshold: float, context: bool) -> torch.Tensor:
    """(N, gh, gw) bool: the object patches (box coverage / the image's highest coverage
    above ``threshold``), or with ``context`` the others."""
    cover = patch_coverage(box_mask(boxes, height, width), patch)
    score = cover / (cover.amax(dim=(1, 2), keepdim=True) + 1e-8)  # rf masking.py:163
    chosen = score > threshold  # rf masking.py:164
    return ~chosen if context else chosen  # rf masking.py:165-166


@RECIPES.register("ft_kd")
class FineTuneDistill(Recipe):
    """FT + feature distillation towards the start body on the unmodified batch (rf's
    ``FT_FD``, run.sh:104-109)."""

    PARAMS: dict[str, Any] = {**Recipe.PARAMS, "weight": DISTILL_WEIGHT, "relative": True}
    RANGES = {**Recipe.RANGES, "weight": (0.0, math.inf, True)}

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.teacher: torch.nn.Module | None = None
        self.capture: BatchCapture | None = None

    def configure(
        self, model: Detector, start_state: dict[str, torch.Tensor], importance: dict | None
    ) -> None:
        teacher = copy.deepcopy(model.body)  # before the hooks: the copy carries none
        teacher.load_state_dict(model.body_state(start_state))  # θ0, also when resuming
        self.teacher = teacher.requires_grad_(False).eval()
        if self.capture is not None:
            self.capture.remove()
        self.capture = BatchCapture(model)

    def input_for(self, x: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        """The image both bodies are compared on."""
        return x

    def extra_losses(
        self, model: Detector, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        import torch
        import torch.nn.functional as F

        capture, teacher = self.capture, self.teacher
        assert capture is not None and teacher is not None, "configure() first"
        if capture.tensor is None:
            return {}
        x = self.input_for(capture.tensor, capture.boxes_on_tensor(images, targets))
        capture.tensor = capture.boxes = None  # one use per step; frees the batch
        with capture.paused():
            student = model.body(x)
            with torch.no_grad():
                reference = teacher(x)
        mse = torch.stack([F.mse_loss(s, reference[k]) / reference[k].pow(2).mean()
                           if self.params["relative"] else F.mse_loss(s, reference[k])
                           for k, s in student.items()]).mean()
        return {"loss_distill": float(self.params["weight"]) * mse}

    def finalize(self, model: Detector, start_state: dict[str, torch.Tensor]) -> None:
        if self.capture is not None:
            self.capture.remove()
        self.capture = self.teacher = None


@RECIPES.register("cf_kd")
class CounterfactualDistill(FineTuneDistill):
    """Distillation on the batch with its object (or context) patches refilled from another
    image (rf ``FT_FD_image_mask`` with ``ObjMaskSingleFill`` / ``CtxMaskSingleFill``)."""

    PARAMS: dict[str, Any] = {**FineTuneDistill.PARAMS, "masking": "object", "threshold": None,
                              "patch": PATCH}
    RANGES = {**FineTuneDistill.RANGES, "threshold": (0.0, 1.0, True),
              "patch": (1.0, 1024.0, True)}

    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        masking, patch = self.params["masking"], self.params["patch"]
        if masking not in THRESHOLDS:
            raise ConfigError(f"recipe 'cf_kd': masking={masking!r}: must be one of "
                              f"{', '.join(THRESHOLDS)}")
        if not isinstance(patch, int) or isinstance(patch, bool):
            raise ConfigError(f"recipe 'cf_kd': patch={patch!r}: must be a whole number of "
                              "pixels >= 1 and <= 1024")
        threshold = self.params["threshold"]
        self.threshold = THRESHOLDS[masking] if threshold is None else float(threshold)

    def input_for(self, x: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        import torch

        n = x.shape[0]
        patch = int(self.params["patch"])
        chosen = chosen_patches(boxes, *x.shape[-2:], patch, self.threshold,
                                self.params["masking"] == "context")
        source = None
        if n > 1:  # another image for every image: a non-zero cyclic shift (rf masking.py:191)
            shift = int(torch.randint(1, n, ()))
            source = (torch.arange(n, device=x.device) + shift) % n
        return counterfactual(x, chosen.to(x.device), patch, source)
