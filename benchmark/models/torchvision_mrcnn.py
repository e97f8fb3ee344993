"""torchvision Mask R-CNN + FPN as a detector engine: the Cityscapes study's detector.

``mrcnn_fpn`` is ``frcnn_fpn`` (detectron2's R50-FPN geometry and losses, see
:mod:`benchmark.models.torchvision_frcnn`) plus detectron2's mask head
(``MaskRCNNConvUpsampleHead``; facebookresearch/detectron2@02b5c4e2
configs/Base-RCNN-FPN.yaml lines 28–31: NUM_CONV 4, POOLER_RESOLUTION 14;
detectron2/config/defaults.py lines 352 POOLER_SAMPLING_RATIO 0, 354 CONV_DIM 256, 357 no
norm, 359 CLS_AGNOSTIC_MASK False, 361 POOLER_TYPE ROIAlignV2): RoIAlignV2 14×14 on P2–P5,
four 3×3 convs of 256 channels, a 2×2 stride-2 transposed conv to 28×28, and one 1×1 mask
logit per object class (no background mask). ``mrcnn_fpn_small`` is the same head on
``frcnn_fpn_small``'s geometry (64 channels) for CPU tests.

The contract's ``predict`` returns ``masks`` (N, H, W) in [0, 1]: torchvision pastes each
28×28 probability map into its box in image coordinates (detectron2 thresholds at 0.5 while
pasting; the evaluation binarises the same way).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads

from benchmark.models.engine import ENGINES
from benchmark.models.torchvision_frcnn import (
    FRCNN_FPN,
    FRCNN_FPN_SMALL,
    AlignedMultiScaleRoIAlign,
    Geometry,
    TorchvisionFasterRCNN,
    frcnn_arguments,
    roi_levels,
    torchvision_card,
    with_detectron2_heads,
    with_study_input,
)

if TYPE_CHECKING:
    from benchmark.spec import RunSpec

#: configs/Base-RCNN-FPN.yaml line 30 (ROI_MASK_HEAD.NUM_CONV 4), line 31 (POOLER_RESOLUTION 14)
MASK_CONVS = 4
MASK_POOLER_RESOLUTION = 14


class ObjectMaskPredictor(nn.Module):
    """detectron2's deconv + predictor (detectron2/modeling/roi_heads/mask_head.py lines
    256–271): ConvTranspose2d(2×2, stride 2) + ReLU, then a 1×1 conv to one logit map per
    object class, initialised as there (MSRA fill for the deconv, N(0, 0.001) for the
    predictor). torchvision indexes masks by label with the background at 0, so a zero map is
    prepended (not a parameter)."""

    def __init__(self, in_channels: int, dim: int, num_classes: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, dim, kernel_size=2, stride=2)
        self.predictor = nn.Conv2d(dim, num_classes, kernel_size=1)
        nn.init.kaiming_normal_(self.deconv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.deconv.bias)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.predictor(torch.relu(self.deconv(x)))
        return torch.cat([logits.new_zeros(logits.shape[0], 1, *logits.shape[2:]), logits], 1)


class TorchvisionMaskRCNN(TorchvisionFasterRCNN):
    """A Faster R-CNN engine whose targets carry ``masks`` and whose predictions do too."""

    needs_masks = True

    @torch.no_grad()
    def predict(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return [{**out, "masks": out["masks"][:, 0]} for out in super().predict(images)]


def build_mrcnn(geometry: Geometry, spec: RunSpec, num_classes: int) -> TorchvisionMaskRCNN:
    dim = geometry.fpn_channels
    model = MaskRCNN(
        **frcnn_arguments(geometry, spec, num_classes),
        mask_roi_pool=AlignedMultiScaleRoIAlign(
            roi_levels(geometry), output_size=MASK_POOLER_RESOLUTION,
            sampling_ratio=geometry.sampling_ratio,
        ),
        mask_head=MaskRCNNHeads(dim, [dim] * MASK_CONVS, dilation=1),
        mask_predictor=ObjectMaskPredictor(dim, dim, num_classes),
    )
    sched = spec.schedule
    return TorchvisionMaskRCNN(with_study_input(with_detectron2_heads(model), spec),
                               train_sizes=sched.train_sizes, test_size=sched.test_size)


for _name, _geometry in (("mrcnn_fpn", FRCNN_FPN), ("mrcnn_fpn_small", FRCNN_FPN_SMALL)):
    _builder = partial(build_mrcnn, _geometry)
    _builder.needs_masks = True  # type: ignore[attr-defined]  (engine_needs_masks reads it)
    _builder.card = partial(torchvision_card, _geometry, "mask_rcnn_fpn")  # type: ignore[attr-defined]
    ENGINES.register(_name)(_builder)
