"""torchvision Faster R-CNN + FPN as a detector engine.

Two geometries are registered. ``frcnn_fpn`` is detectron2's R50-FPN
(``configs/Base-RCNN-FPN.yaml``, the geometry of the studies): FPN on P2–P5 plus P6 by
max-pooling for the RPN, one anchor size per level 32–512 × ratios 0.5/1/2, RPN pre-NMS
top-k 2000/1000 per level and post-NMS 1000/1000 per image (train/test), RoIAlign 7×7 with
sampling ratio 0 on P2–P5 (level = ⌊4 + log2(√area / 224)⌋), 512 RoIs per image with 25 %
positives, two 1024-d FC layers, class-specific box regression without a background box,
box-regression weights (10, 10, 5, 5), test score threshold 0.05, NMS 0.5, 100 detections.
``frcnn_fpn_small`` is the CPU demo engine: the same construction with smaller numbers and
the demo's original P3–P5 levels (its committed records were made so).

Two differences from detectron2 remain, both inside torchvision's heads: RoIAlign runs with
``aligned=False`` (detectron2's ROIAlignV2 is ``aligned=True``), and the box losses are
smooth-L1 with β = 1/9 (detectron2: β = 0, plain L1). torchvision's model counts background
as class 0, so the contract's 0-based labels are shifted by one on the way in and out.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from benchmark.models.backbones import Body, build_body
from benchmark.models.engine import ENGINES, Detector

if TYPE_CHECKING:
    from benchmark.spec import RunSpec


@dataclass(frozen=True)
class Geometry:
    """The numbers that size a torchvision Faster R-CNN + FPN."""

    fpn_channels: int
    anchor_sizes: tuple[int, ...]  # one per FPN level (3 body levels + max-pool level)
    rpn_pre_nms_train: int
    rpn_post_nms_train: int
    rpn_pre_nms_test: int
    rpn_post_nms_test: int
    rois_per_image: int
    head_dim: int
    detections_per_image: int = 100
    score_threshold: float = 0.01
    p2: bool = False  # FPN on P2–P5 (the body's four levels) instead of P3–P5
    sampling_ratio: int = 2  # RoIAlign sampling points per bin (0: adaptive, detectron2)
    background_box: bool = True  # False: class-specific boxes only for object classes


#: detectron2's R50-FPN (facebookresearch/detectron2@02b5c4e2): configs/Base-RCNN-FPN.yaml
#: line 10 (anchor SIZES [[32], [64], [128], [256], [512]]), 14-15 (RPN PRE_NMS_TOPK 2000 /
#: 1000 per level), 19-20 (POST_NMS_TOPK 1000 / 1000), 23 (RoI IN_FEATURES p2-p5), 26 (NUM_FC
#: 2); detectron2/config/defaults.py line 269 (BATCH_SIZE_PER_IMAGE 512), 271
#: (POSITIVE_FRACTION 0.25), 280 (SCORE_THRESH_TEST 0.05), 283 (NMS_THRESH_TEST 0.5), 306
#: (POOLER_SAMPLING_RATIO 0), 312 (FC_DIM 1024)
FRCNN_FPN = Geometry(256, (32, 64, 128, 256, 512), 2000, 1000, 1000, 1000, 512, 1024,
                     score_threshold=0.05, p2=True, sampling_ratio=0, background_box=False)
FRCNN_FPN_SMALL = Geometry(64, (16, 32, 64, 128), 600, 300, 300, 150, 128, 256)


class BodyWithFPN(nn.Module):
    """Body + FPN (+ a max-pooled top level). On P2–P5 with ``p2``, else on P3–P5. With
    ``detach_body`` the body's outputs are detached (decoder probing)."""

    def __init__(self, body: Body, fpn_channels: int, p2: bool = False) -> None:
        super().__init__()
        self.body = body
        self.p2 = p2
        channels = body.level_channels if p2 else body.out_channels
        # GroupNorm(32) after each lateral / output conv (which then has no bias) where the
        # studies put it (Body.fpn_norm: ConvNeXt)
        norm = partial(nn.GroupNorm, 32) if body.fpn_norm == "GN" else None
        self.fpn = FeaturePyramidNetwork(channels, fpn_channels, LastLevelMaxPool(),
                                         norm_layer=norm)
        self.out_channels = fpn_channels
        self.detach_body = False

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        if self.p2:
            feats = OrderedDict((str(i), f) for i, f in enumerate(self.body.levels(x).values()))
        else:
            feats = self.body(x)
        if self.detach_body:
            feats = OrderedDict((k, v.detach()) for k, v in feats.items())
        return self.fpn(feats)


class ObjectBoxPredictor(nn.Module):
    """detectron2's ``FastRCNNOutputLayers``: class scores for K classes + background, box
    deltas for the K object classes only. torchvision's heads index deltas by label with the
    background at 0, so its (never used) four columns are zeros, not parameters."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes + 1)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.flatten(start_dim=1)
        deltas = self.bbox_pred(x)
        return self.cls_score(x), torch.cat([deltas.new_zeros(deltas.shape[0], 4), deltas], 1)


class _ShiftLabels(nn.Module):
    """torchvision's FasterRCNN taking the contract's 0-based labels (background is 0)."""

    def __init__(self, model: FasterRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        shifted = [{**t, "labels": t["labels"] + 1} for t in targets]
        return self.model(images, shifted)


class TorchvisionFasterRCNN(Detector):
    def __init__(self, model: FasterRCNN, train_sizes: tuple[int, ...], test_size: int) -> None:
        super().__init__()
        self.model = model
        self.train_sizes = tuple(train_sizes)
        self.test_size = test_size

    @property
    def body(self) -> Body:  # type: ignore[override]
        return self.model.backbone.body

    def train_module(self) -> nn.Module:
        return _ShiftLabels(self.model)  # not a submodule: the state dict stays "model.*"

    def prepare_train(self) -> None:
        self.model.train()
        self.model.transform.min_size = self.train_sizes  # one drawn per batch (global RNG)

    @torch.no_grad()
    def predict(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.model.eval()
        self.model.transform.min_size = (self.test_size,)
        return [{**out, "labels": out["labels"] - 1} for out in self.model(images)]

    def set_detach_body(self, detach: bool) -> None:
        self.model.backbone.detach_body = detach

    def body_state_prefix(self) -> str:
        return "model.backbone.body."


def build_frcnn(geometry: Geometry, spec: RunSpec, num_classes: int) -> TorchvisionFasterRCNN:
    g = geometry
    b = spec.backbone
    body = build_body(b.name, b.weights, b.freeze_at, strict=b.strict, drop_path=b.drop_path)
    sched = spec.schedule
    model = FasterRCNN(
        BodyWithFPN(body, g.fpn_channels, p2=g.p2),
        num_classes=None,
        min_size=sched.train_sizes,
        max_size=sched.max_size,
        # images are RGB in [0, 1]: the statistics the body's weights expect, in RGB order
        image_mean=[m / 255 for m in body.rgb_pixel_mean],
        image_std=[s / 255 for s in body.rgb_pixel_std],
        rpn_anchor_generator=AnchorGenerator(
            tuple((s,) for s in g.anchor_sizes), ((0.5, 1.0, 2.0),) * len(g.anchor_sizes)
        ),
        box_roi_pool=MultiScaleRoIAlign(
            ["0", "1", "2", "3"] if g.p2 else ["0", "1", "2"], output_size=7,
            sampling_ratio=g.sampling_ratio,
        ),
        box_head=TwoMLPHead(g.fpn_channels * 7 * 7, g.head_dim),
        box_predictor=(
            FastRCNNPredictor(g.head_dim, num_classes + 1)  # + background
            if g.background_box else ObjectBoxPredictor(g.head_dim, num_classes)
        ),
        rpn_pre_nms_top_n_train=g.rpn_pre_nms_train,
        rpn_post_nms_top_n_train=g.rpn_post_nms_train,
        rpn_pre_nms_top_n_test=g.rpn_pre_nms_test,
        rpn_post_nms_top_n_test=g.rpn_post_nms_test,
        box_batch_size_per_image=g.rois_per_image,
        box_detections_per_img=g.detections_per_image,
        box_score_thresh=g.score_threshold,
    )
    return TorchvisionFasterRCNN(model, train_sizes=sched.train_sizes, test_size=sched.test_size)


ENGINES.register("frcnn_fpn")(partial(build_frcnn, FRCNN_FPN))
ENGINES.register("frcnn_fpn_small")(partial(build_frcnn, FRCNN_FPN_SMALL))
