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

Losses and pooling are detectron2's too (:class:`DetectronRPN`, :class:`DetectronRoIHeads`,
:class:`AlignedMultiScaleRoIAlign`): RoIAlign with ``aligned=True`` (ROIAlignV2), plain L1
box-regression losses (SMOOTH_L1_BETA 0; torchvision hard-codes smooth-L1 with β = 1/9), RPN
losses summed over the sampled anchors and divided by BATCH_SIZE_PER_IMAGE × images (torchvision
divides by the number actually sampled). torchvision's model counts background as class 0, so
the contract's 0-based labels are shifted by one on the way in and out.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import MultiScaleRoIAlign, roi_align
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool
from torchvision.ops.poolers import _convert_to_roi_format, _setup_scales

from benchmark.models import study_input
from benchmark.models.backbones import Body, build_body
from benchmark.models.engine import ENGINES, Detector
from benchmark.models.geometry import (
    FRCNN_FPN,
    FRCNN_FPN_SMALL,
    Geometry,
    anchor_strides,
    detector_fields,
    roi_levels,
)
from benchmark.models.study_input import StudyTransform

if TYPE_CHECKING:
    from benchmark.spec import RunSpec


class LevelStrideAnchorGenerator(AnchorGenerator):
    """detectron2's ``DefaultAnchorGenerator`` in torchvision's interface (detectron2@02b5c4e2
    detectron2/modeling/anchor_generator.py): each level's anchors step by the level's own
    stride (4 … 64; :173-174), where torchvision takes ``image size // grid size`` — 800 // 13
    = 61 instead of 64 at P6 of an 800-px input —, and the cell anchors are the exact
    ``w = sqrt(size² / ratio)``, ``h = ratio · w`` boxes (:205-215), which torchvision rounds
    to integers. Offset 0 as detectron2's default (config/defaults.py:195) and torchvision."""

    def __init__(self, sizes: tuple[int, ...], aspect_ratios: tuple[float, ...],
                 strides: tuple[int, ...]) -> None:
        super().__init__(tuple((s,) for s in sizes), (aspect_ratios,) * len(sizes))
        self.level_strides = strides

    def generate_anchors(self, scales: list[int], aspect_ratios: list[float],
                         dtype: torch.dtype = torch.float32,
                         device: torch.device | None = None) -> torch.Tensor:
        cells = []
        for ratio in aspect_ratios:  # ratio-major, as torchvision orders them
            for size in scales:
                w = math.sqrt(float(size) ** 2 / float(ratio))
                h = float(ratio) * w
                cells.append([-w / 2, -h / 2, w / 2, h / 2])
        return torch.tensor(cells, dtype=dtype, device=device)

    def forward(self, image_list: Any, feature_maps: list[torch.Tensor]) -> list[torch.Tensor]:
        grid_sizes = [f.shape[-2:] for f in feature_maps]
        dtype, device = feature_maps[0].dtype, feature_maps[0].device
        strides = [[torch.tensor(s, dtype=torch.int64, device=device)] * 2
                   for s in self.level_strides]
        self.set_cell_anchors(dtype, device)
        per_level = self.grid_anchors(grid_sizes, strides)
        return [torch.cat(per_level) for _ in image_list.image_sizes]


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


#: detectron2's box-regression loss is smooth-L1 with β = 0, i.e. plain L1, in the RPN and the
#: box head: detectron2/config/defaults.py line 230 (RPN.SMOOTH_L1_BETA 0.0) and 304
#: (ROI_BOX_HEAD.SMOOTH_L1_BETA 0.0), both with BBOX_REG_LOSS_TYPE "smooth_l1" (225, 296)
SMOOTH_L1_BETA = 0.0


class AlignedMultiScaleRoIAlign(MultiScaleRoIAlign):
    """``MultiScaleRoIAlign`` with ``aligned=True``: detectron2's ROIAlignV2 (defaults.py line
    308 / 361 POOLER_TYPE "ROIAlignV2"; detectron2/modeling/poolers.py lines 170–173). A box
    corner at pixel coordinate x samples the feature map at x·scale − 0.5 (pixel centres),
    not at x·scale. torchvision's level mapper is kept (⌊4 + log2(√area / 224) + 1e-6⌋;
    detectron2/modeling/poolers.py line 54 adds its 1e-8 inside the log)."""

    def forward(self, x: dict[str, torch.Tensor], boxes: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        feats = [x[k] for k in self.featmap_names]
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(
                feats, image_shapes, self.canonical_scale, self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        levels = self.map_levels(boxes)
        out = feats[0].new_zeros((rois.shape[0], feats[0].shape[1], *self.output_size))
        for level, (feat, scale) in enumerate(zip(feats, self.scales, strict=True)):
            idx = torch.where(levels == level)[0]
            out[idx] = roi_align(feat, rois[idx], self.output_size, scale, self.sampling_ratio,
                                 aligned=True).to(out.dtype)
        return out


class DetectronRPN(RegionProposalNetwork):
    """torchvision's RPN with detectron2's losses (detectron2/modeling/proposal_generator/
    rpn.py lines 405–427): L1 box loss over the positive anchors and summed objectness BCE over
    the sampled ones, both divided by BATCH_SIZE_PER_IMAGE × images (256 × N, defaults.py line
    221) rather than by the number of anchors actually sampled."""

    def compute_loss(self, objectness: torch.Tensor, pred_bbox_deltas: torch.Tensor,
                     labels: list[torch.Tensor], regression_targets: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        pos, neg = self.fg_bg_sampler(labels)  # the same draws as torchvision's
        pos_idx = torch.where(torch.cat(pos, dim=0))[0]
        sampled = torch.cat([pos_idx, torch.where(torch.cat(neg, dim=0))[0]])
        normaliser = self.fg_bg_sampler.batch_size_per_image * len(labels)
        gt = torch.cat(labels, dim=0)
        targets = torch.cat(regression_targets, dim=0)
        box_loss = F.smooth_l1_loss(pred_bbox_deltas[pos_idx], targets[pos_idx],
                                    beta=SMOOTH_L1_BETA, reduction="sum") / normaliser
        objectness_loss = F.binary_cross_entropy_with_logits(
            objectness.flatten()[sampled], gt[sampled], reduction="sum") / normaliser
        return objectness_loss, box_loss


def box_head_losses(class_logits: torch.Tensor, box_regression: torch.Tensor,
                    labels: list[torch.Tensor], regression_targets: list[torch.Tensor]
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """detectron2's ``FastRCNNOutputLayers.losses`` (detectron2/modeling/roi_heads/
    fast_rcnn.py lines 344 and 424–463): mean cross-entropy over the sampled RoIs; L1 on the
    foreground RoIs' class-specific deltas, summed and divided by the number of sampled RoIs
    (all of them, background included). torchvision normalises the same way; only β
    differs."""
    gt = torch.cat(labels, dim=0)
    targets = torch.cat(regression_targets, dim=0)
    classification = F.cross_entropy(class_logits, gt)
    fg = torch.where(gt > 0)[0]
    deltas = box_regression.reshape(gt.shape[0], -1, 4)[fg, gt[fg]]
    box = F.smooth_l1_loss(deltas, targets[fg], beta=SMOOTH_L1_BETA, reduction="sum")
    return classification, box / max(gt.numel(), 1)


def mask_targets(gt_masks: torch.Tensor, boxes: torch.Tensor, matched: torch.Tensor,
                 size: int) -> torch.Tensor:
    """Binary (size × size) targets of the matched instance masks inside ``boxes``:
    detectron2's ``BitMasks.crop_and_resize`` (detectron2/structures/masks.py lines 193–224:
    ROIAlign(size, 1.0, sampling 0, aligned=True), then ≥ 0.5). torchvision keeps the soft
    RoIAlign values with ``aligned=False``."""
    rois = torch.cat([matched.to(boxes)[:, None], boxes], dim=1)
    crops = roi_align(gt_masks[:, None].to(boxes), rois, (size, size), 1.0, 0, aligned=True)
    return (crops[:, 0] >= 0.5).to(boxes.dtype)


class DetectronRoIHeads(RoIHeads):
    """torchvision's RoI heads with detectron2's training losses (:func:`box_head_losses`;
    with a mask branch, detectron2's ``mask_rcnn_loss``: mean per-pixel BCE of the
    ground-truth class's mask logits on the foreground RoIs, detectron2/modeling/roi_heads/
    mask_head.py line 111, against :func:`mask_targets`). Inference is torchvision's."""

    def forward(self, features: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                image_shapes: list[tuple[int, int]],
                targets: list[dict[str, torch.Tensor]] | None = None,
                ) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        if not self.training:
            return super().forward(features, proposals, image_shapes, targets)
        assert targets is not None
        proposals, matched, labels, regression_targets = self.select_training_samples(
            proposals, targets)
        x = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(x)
        cls_loss, box_loss = box_head_losses(class_logits, box_regression, labels,
                                             regression_targets)
        losses = {"loss_classifier": cls_loss, "loss_box_reg": box_loss}
        if self.has_mask():
            losses["loss_mask"] = self._mask_loss(features, proposals, image_shapes, matched,
                                                  labels, targets)
        return [], losses

    def _mask_loss(self, features: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                   image_shapes: list[tuple[int, int]], matched: list[torch.Tensor],
                   labels: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
                   ) -> torch.Tensor:
        fg = [torch.where(lab > 0)[0] for lab in labels]
        boxes = [p[i] for p, i in zip(proposals, fg, strict=True)]
        logits = self.mask_predictor(self.mask_head(self.mask_roi_pool(features, boxes,
                                                                       image_shapes)))
        size = logits.shape[-1]
        gt = torch.cat([lab[i] for lab, i in zip(labels, fg, strict=True)])
        if gt.numel() == 0:
            return logits.sum() * 0
        want = torch.cat([
            mask_targets(t["masks"], b, m[i], size)
            for t, b, m, i in zip(targets, boxes, matched, fg, strict=True) if i.numel()
        ])
        picked = logits[torch.arange(gt.shape[0], device=gt.device), gt]
        return F.binary_cross_entropy_with_logits(picked, want)


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


def torchvision_card(g: Geometry, architecture: str, spec: RunSpec
                ) -> tuple[dict[str, str], dict[str, str]]:
    """``card`` of the torchvision engines (:mod:`benchmark.models.engine`)."""
    b = spec.backbone
    return (detector_fields(g, architecture),
            study_input.input_fields(b.weights, b.norm, b.study_compat))


def frcnn_arguments(geometry: Geometry, spec: RunSpec, num_classes: int) -> dict[str, Any]:
    """torchvision ``FasterRCNN`` / ``MaskRCNN`` keyword arguments of a geometry."""
    g = geometry
    b = spec.backbone
    body = build_body(b.name, b.weights, b.freeze_at, strict=b.strict, drop_path=b.drop_path,
                      norm=b.norm)
    sched = spec.schedule
    return dict(
        backbone=BodyWithFPN(body, g.fpn_channels, p2=g.p2),
        num_classes=None,
        min_size=sched.train_sizes,
        max_size=sched.max_size,
        # images are RGB in [0, 1]: the statistics the body's weights expect, in RGB order
        image_mean=[m / 255 for m in body.rgb_pixel_mean],
        image_std=[s / 255 for s in body.rgb_pixel_std],
        rpn_anchor_generator=LevelStrideAnchorGenerator(
            g.anchor_sizes, (0.5, 1.0, 2.0), anchor_strides(g)),
        box_roi_pool=AlignedMultiScaleRoIAlign(roi_levels(g), output_size=7,
                                               sampling_ratio=g.sampling_ratio),
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


def with_detectron2_heads(model: FasterRCNN) -> FasterRCNN:
    """Give the RPN and RoI heads torchvision built detectron2's losses and the box head
    detectron2's initialisation. The loss subclasses add no state, so the modules change
    class in place (torchvision has no factory hook). Initialisation (detectron2@02b5c4e2):
    the two FC layers ``c2_xavier_fill`` (box_head.py:79: Kaiming-uniform a = 1, bias 0,
    where torchvision keeps ``nn.Linear``'s default), class scores N(0, 0.01) and box deltas
    N(0, 0.001) with zero biases (fast_rcnn.py:241-244). The RPN head (N(0, 0.01)) and the
    FPN (Kaiming-uniform a = 1) are initialised alike by torchvision already."""
    model.rpn.__class__ = DetectronRPN
    model.roi_heads.__class__ = DetectronRoIHeads
    heads = model.roi_heads
    for fc in (heads.box_head.fc6, heads.box_head.fc7):
        nn.init.kaiming_uniform_(fc.weight, a=1)
        nn.init.zeros_(fc.bias)
    for layer, std in ((heads.box_predictor.cls_score, 0.01),
                       (heads.box_predictor.bbox_pred, 0.001)):
        nn.init.normal_(layer.weight, std=std)
        nn.init.zeros_(layer.bias)
    return model


def with_study_input(model: FasterRCNN, spec: RunSpec) -> FasterRCNN:
    """``model`` with :class:`StudyTransform` where ``spec`` asks for ``study_compat``."""
    b = spec.backbone
    if b.study_compat:
        t = model.transform
        model.transform = StudyTransform(
            t.min_size, t.max_size, t.image_mean, t.image_std,
            size_divisible=t.size_divisible,
            reverse=study_input.reversed_channels(b.weights, True))
    return model


def build_frcnn(geometry: Geometry, spec: RunSpec, num_classes: int) -> TorchvisionFasterRCNN:
    model = with_detectron2_heads(FasterRCNN(**frcnn_arguments(geometry, spec, num_classes)))
    sched = spec.schedule
    return TorchvisionFasterRCNN(with_study_input(model, spec), train_sizes=sched.train_sizes,
                                 test_size=sched.test_size)


for _name, _geometry in (("frcnn_fpn", FRCNN_FPN), ("frcnn_fpn_small", FRCNN_FPN_SMALL)):
    _builder = partial(build_frcnn, _geometry)
    _builder.card = partial(torchvision_card, _geometry, "faster_rcnn_fpn")  # type: ignore[attr-defined]
    ENGINES.register(_name)(_builder)
