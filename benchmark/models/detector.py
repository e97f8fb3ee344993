"""Detector engines: build a detector from a backbone body and a class count.

An engine is registered under a name used by grids (``engine:``). Both engines here are
torchvision Faster R-CNN + FPN; they differ in size: ``frcnn_fpn`` follows detectron2's
R50-FPN defaults, ``frcnn_fpn_small`` is sized for CPUs (the offline demo).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

from benchmark.models.backbones import Body, build_body
from benchmark.registry import Registry
from benchmark.spec import RunSpec


@dataclass(frozen=True)
class EngineConfig:
    fpn_channels: int
    anchor_sizes: tuple[int, ...]  # one per FPN level (3 body levels + max-pool level)
    rpn_pre_nms_train: int
    rpn_post_nms_train: int
    rpn_pre_nms_test: int
    rpn_post_nms_test: int
    rois_per_image: int
    head_dim: int
    detections_per_image: int = 100


ENGINES: Registry[EngineConfig] = Registry("engine")
ENGINES.register("frcnn_fpn")(
    EngineConfig(256, (32, 64, 128, 256), 2000, 2000, 1000, 1000, 512, 1024)
)
ENGINES.register("frcnn_fpn_small")(
    EngineConfig(64, (16, 32, 64, 128), 600, 300, 300, 150, 128, 256)
)


class BackboneWithFPN(nn.Module):
    """Body + FPN. With ``detach_body`` the body's outputs are detached (decoder probing)."""

    def __init__(self, body: Body, fpn_channels: int) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(body.out_channels, fpn_channels, LastLevelMaxPool())
        self.out_channels = fpn_channels
        self.detach_body = False

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self.body(x)
        if self.detach_body:
            feats = OrderedDict((k, v.detach()) for k, v in feats.items())
        return self.fpn(feats)


class Detector(nn.Module):
    """The engine interface the training loop, RGN and evaluation use."""

    def __init__(self, model: FasterRCNN, train_sizes: tuple[int, ...], test_size: int) -> None:
        super().__init__()
        self.model = model
        self.train_sizes = tuple(train_sizes)
        self.test_size = test_size

    @property
    def backbone(self) -> BackboneWithFPN:
        return self.model.backbone  # type: ignore[return-value]

    @property
    def body(self) -> Body:
        return self.backbone.body

    def set_detach_body(self, detach: bool) -> None:
        self.backbone.detach_body = detach

    def prepare_train(self) -> None:
        self.model.train()
        self.model.transform.min_size = self.train_sizes  # one drawn per batch (global RNG)

    def losses(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
        self.prepare_train()
        return self.model(images, targets)

    @torch.no_grad()
    def predict(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.model.eval()
        self.model.transform.min_size = (self.test_size,)
        return self.model(images)

    def body_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Trainable backbone tensors (frozen stages excluded)."""
        return [(n, p) for n, p in self.body.named_parameters() if p.requires_grad]

    def decoder_parameters(self) -> list[tuple[str, nn.Parameter]]:
        body_ids = {id(p) for p in self.body.parameters()}
        return [
            (n, p)
            for n, p in self.model.named_parameters()
            if p.requires_grad and id(p) not in body_ids
        ]


def build_detector(spec: RunSpec, num_classes: int) -> Detector:
    cfg = ENGINES.get(spec.engine)
    body = build_body(spec.backbone.name, spec.backbone.weights, spec.backbone.freeze_at)
    backbone = BackboneWithFPN(body, cfg.fpn_channels)
    sched = spec.schedule
    model = FasterRCNN(
        backbone,
        num_classes=None,
        min_size=sched.train_sizes,
        max_size=sched.max_size,
        rpn_anchor_generator=AnchorGenerator(
            tuple((s,) for s in cfg.anchor_sizes), ((0.5, 1.0, 2.0),) * len(cfg.anchor_sizes)
        ),
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(cfg.fpn_channels * 7 * 7, cfg.head_dim),
        box_predictor=FastRCNNPredictor(cfg.head_dim, num_classes + 1),  # + background
        rpn_pre_nms_top_n_train=cfg.rpn_pre_nms_train,
        rpn_post_nms_top_n_train=cfg.rpn_post_nms_train,
        rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_test,
        rpn_post_nms_top_n_test=cfg.rpn_post_nms_test,
        box_batch_size_per_image=cfg.rois_per_image,
        box_detections_per_img=cfg.detections_per_image,
        box_score_thresh=0.01,
    )
    return Detector(model, train_sizes=sched.train_sizes, test_size=sched.test_size)
