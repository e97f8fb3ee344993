"""How a body is fed: the suite's input pipeline, and a study's where a grid asks for it.

The suite feeds every body the channel order and pixel statistics its weights were trained
with, keeps BatchNorm statistics as the checkpoint has them (frozen), and resizes with
torchvision's ``GeneralizedRCNNTransform`` (bilinear on the float image). With
``study_compat: true`` (a grid experiment's key; :attr:`benchmark.spec.BackboneSpec.study_compat`)
the torchvision engines instead reproduce what Saito et al.'s code (VisionLearningGroup/
mind_back@5e6694f) did to its inputs, defects included, so that a run can replicate the
published numbers as well as correct them — and the protocol card says which:

* **channel order**: mind_back never sets ``INPUT.FORMAT``, so detectron2 loads images in its
  default BGR order (facebookresearch/detectron2@02b5c4e2 detectron2/config/defaults.py:84)
  and normalises them with the statistics its configs give in RGB order
  (mind_back configs/Pascal/base.yaml:5-6, tools/map_backbone.py:11-21): a body whose
  weights were trained on RGB receives BGR (:func:`reversed_channels`);
* **BatchNorm statistics**: before freezing BatchNorm, mind_back runs the freshly loaded
  network once in train mode on ``torch.rand(2, 3, 224, 224)`` (src/modeling/backbone/
  fpn.py:619, 714, 841), which moves every running mean and variance 10 % (momentum 0.1)
  towards the statistics of uniform noise (:func:`perturb_batchnorm`);
* **resize**: detectron2's ``ResizeShortestEdge`` (data/transforms/augmentation_impl.py:134-
  178): output size ``int(x + 0.5)`` of the scaled shape, PIL bilinear on the uint8 image
  (:class:`benchmark.models.torchvision_frcnn.StudyResize`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes
from torchvision.ops import FrozenBatchNorm2d

from benchmark.models.checkpoints import catalogue

#: the values of the protocol card's input fields (benchmark.protocol_card.InputCard)
AS_WEIGHTS = "weights"
REVERSED = "reversed"
BN_FROZEN = "frozen (the checkpoint's statistics)"
BN_PERTURBED = "frozen after one train-mode forward of U(0, 1) noise (2x3x224x224)"
BN_EVAL_AFFINE = "statistics frozen, affine trained (mmdetection norm_eval)"
BN_TRAINED = "trained (no pretrained statistics)"
RESIZE_TORCHVISION = "torchvision GeneralizedRCNNTransform: bilinear on float, size floor"
RESIZE_DETECTRON2 = "detectron2 ResizeShortestEdge: PIL bilinear on uint8, size int(x + 0.5)"
#: the seed of the noise batch of perturb_batchnorm (mind_back draws it from the global RNG)
NOISE_SEED = 0


def weights_channel_order(weights: str) -> str:
    """"RGB" or "BGR": the order the checkpoint ``weights`` was trained with (the catalogue's
    statistics; packaged ImageNet weights, files outside the catalogue and "none": RGB)."""
    entry = catalogue.lookup(weights)
    return entry.pixel_stats.channel_order if entry is not None else "RGB"


def reversed_channels(weights: str, study_compat: bool) -> bool:
    """Whether the body receives the reverse of its weights' channel order: only under
    ``study_compat``, and only for weights trained on RGB (mind_back feeds BGR)."""
    return study_compat and weights_channel_order(weights) == "RGB"


def input_fields(weights: str, norm: str, study_compat: bool) -> dict[str, str]:
    """The protocol card's input fields of a torchvision engine for one backbone."""
    if weights == "none":
        bn = BN_TRAINED
    elif norm == "eval_affine":
        bn = BN_EVAL_AFFINE
    else:
        bn = BN_PERTURBED if study_compat else BN_FROZEN
    return {
        "channel_order": REVERSED if reversed_channels(weights, study_compat) else AS_WEIGHTS,
        "pixel_stats": AS_WEIGHTS,
        "bn": bn,
        "resize": RESIZE_DETECTRON2 if study_compat else RESIZE_TORCHVISION,
    }


@torch.no_grad()
def perturb_batchnorm(body: nn.Module) -> int:
    """mind_back's train-mode forward before freezing (see the module docstring), on a body
    whose BatchNorm is already frozen: each ``FrozenBatchNorm2d`` becomes a ``BatchNorm2d``
    (momentum 0.1, as mind_back's freshly built torchvision / timm networks) with its
    statistics, the body runs once in train mode on seeded U(0, 1) noise, and the updated
    statistics are frozen again. Returns the number of layers updated."""
    swapped: list[tuple[nn.Module, str, FrozenBatchNorm2d, nn.BatchNorm2d]] = []
    for parent in body.modules():
        for name, child in parent.named_children():
            if isinstance(child, FrozenBatchNorm2d):
                bn = nn.BatchNorm2d(child.weight.numel(), eps=child.eps, momentum=0.1)
                bn.weight.copy_(child.weight)
                bn.bias.copy_(child.bias)
                bn.running_mean.copy_(child.running_mean)
                bn.running_var.copy_(child.running_var)
                setattr(parent, name, bn)
                swapped.append((parent, name, child, bn))
    was_training = body.training
    body.train()
    noise = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(NOISE_SEED))
    body(noise)
    body.train(was_training)
    for parent, name, frozen, bn in swapped:
        frozen.running_mean.copy_(bn.running_mean)
        frozen.running_var.copy_(bn.running_var)
        setattr(parent, name, frozen)
    return len(swapped)


class StudyTransform(GeneralizedRCNNTransform):
    """The input pipeline of ``study_compat`` (see the module docstring): detectron2's
    ``ResizeShortestEdge`` (facebookresearch/detectron2@02b5c4e2
    detectron2/data/transforms/augmentation_impl.py:184-200: the scaled shape rounded by
    ``int(x + 0.5)``; transform.py:117-123: PIL bilinear on the uint8 image; :149-152: boxes
    scaled by new / old size) and, where ``reverse`` (RGB weights), the channels reversed
    before the normalisation, as mind_back's BGR images normalised with RGB statistics."""

    def __init__(self, *args: Any, reverse: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reverse = reverse

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return super().normalize(image.flip(0) if self.reverse else image)

    def resize(self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        h, w = image.shape[-2:]
        size = self.torch_choice(self.min_size) if self.training else self.min_size[-1]
        scale = size / min(h, w)
        newh, neww = (size, scale * w) if h < w else (scale * h, size)
        if max(newh, neww) > self.max_size:
            factor = self.max_size / max(newh, neww)
            newh, neww = newh * factor, neww * factor
        newh, neww = int(newh + 0.5), int(neww + 0.5)
        pixels = (image.mul(255).round().clamp(0, 255).to(torch.uint8)
                  .permute(1, 2, 0).cpu().numpy())
        resized = np.asarray(Image.fromarray(pixels).resize((neww, newh), Image.BILINEAR))
        out = torch.from_numpy(resized.copy()).permute(2, 0, 1).to(image) / 255
        if target is not None:
            if "masks" in target:
                raise NotImplementedError("study_compat resizes boxes only (Faster R-CNN)")
            target["boxes"] = resize_boxes(target["boxes"], (h, w), (newh, neww))
        return out, target
