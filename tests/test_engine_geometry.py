"""``frcnn_fpn`` is detectron2's R50-FPN: parameter counts, anchors, proposal and RoI counts
against detectron2's own figures.

The reference figures were measured with detectron2 built from its source against torch
2.14.1 (``COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml``, ROI_HEADS.NUM_CLASSES 20, MSRA R-50
with FREEZE_AT 2):

* 41,392,436 parameters, 41,170,036 trainable: FREEZE_AT=2 freezes the stem (conv1 7×7×3×64
  = 9,408) and res2 (3 bottlenecks of 64→64→256: 3·(64·c_in + 64·64·9 + 64·256) with
  c_in = 64, 256, 256, plus the 1×1 shortcut 64·256 = 212,992); 9,408 + 212,992 = 222,400
  = 41,392,436 − 41,170,036. FrozenBN statistics are buffers, not parameters.
* 42 trainable backbone tensors: the conv kernels of res3 (4 blocks × 3 + shortcut = 13),
  res4 (6 × 3 + 1 = 19) and res5 (3 × 3 + 1 = 10); FrozenBN has no parameters.
* (200·304 + 100·152 + 50·76 + 25·38 + 13·19) × 3 = 242,991 anchors on an 800 × 1216 input:
  P2–P5 at strides 4–32, P6 by max-pooling P5 (kernel 1, stride 2: ⌈25/2⌉ × ⌈38/2⌉), one size
  per level × 3 aspect ratios.
* RPN: pre-NMS top-k 2000 / 1000 per level, post-NMS 1000 / 1000 per image (train / test), NMS
  0.7; ROI heads: 512 RoIs per image, 25 % positives, test score 0.05, NMS 0.5, 100 detections,
  box weights (10, 10, 5, 5); RoIAlign on P2–P5 with canonical box 224 at level 4.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

from benchmark.models import build_detector
from benchmark.spec import BackboneSpec, RecipeSpec, RunSpec, Schedule


@pytest.fixture(scope="module")
def r50_fpn(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("w") / "r50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)  # torchvision layout
    spec = RunSpec(
        family="pascal", engine="frcnn_fpn", backbone=BackboneSpec("resnet50", str(path)),
        recipe=RecipeSpec("ft"), train_split="voc0712_trainval", id_split="voc07_test",
        ood_splits=(), corruption=None,
        schedule=Schedule(iterations=1, batch_size=2, lr=0.0025, train_sizes=(800,),
                          test_size=800, max_size=1333),
        seed=0,
    )
    return build_detector(spec, 20)


def test_parameter_counts_equal_detectron2(r50_fpn) -> None:
    params = list(r50_fpn.parameters())
    assert sum(p.numel() for p in params) == 41_392_436
    assert sum(p.numel() for p in params if p.requires_grad) == 41_170_036
    assert len(r50_fpn.body_parameters()) == 42


def test_anchors_on_p2_to_p6_equal_detectron2(r50_fpn) -> None:
    model = r50_fpn.model.eval()
    with torch.no_grad():
        images, _ = model.transform([torch.rand(3, 800, 1216)])
        feats = model.backbone(images.tensors)
        anchors = model.rpn.anchor_generator(images, list(feats.values()))
    sizes = [tuple(f.shape[-2:]) for f in feats.values()]
    assert sizes == [(200, 304), (100, 152), (50, 76), (25, 38), (13, 19)]
    assert anchors[0].shape == (242_991, 4)
    per_level = model.rpn.anchor_generator.sizes
    assert per_level == ((32,), (64,), (128,), (256,), (512,))
    # detectron2's anchors, by hand (anchor_generator.py:173-174, 205-215; offset 0): P6's
    # last cell, column 18 / row 12 at stride 64 → centre (1152, 768); ratio 0.5 (first of
    # its three): w = sqrt(512² / 0.5) = 724.0773, h = 0.5 · w = 362.0387 — not torchvision's
    # stride 800 // 13 = 61 nor its integer-rounded cell anchors
    w = math.sqrt(512**2 / 0.5)
    p6 = anchors[0][-13 * 19 * 3:].view(13, 19, 3, 4)
    expected = torch.tensor([1152 - w / 2, 768 - w / 4, 1152 + w / 2, 768 + w / 4])
    torch.testing.assert_close(p6[12, 18, 0], expected, atol=1e-4, rtol=0)
    # P2's first cell, size 32 ratio 1: centred at (0, 0), exactly ±16
    assert anchors[0][1].tolist() == [-16.0, -16.0, 16.0, 16.0]


def test_proposal_and_roi_counts_equal_detectron2(r50_fpn) -> None:
    rpn, roi = r50_fpn.model.rpn, r50_fpn.model.roi_heads
    assert rpn._pre_nms_top_n == {"training": 2000, "testing": 1000}
    assert rpn._post_nms_top_n == {"training": 1000, "testing": 1000}
    assert rpn.nms_thresh == 0.7
    assert roi.fg_bg_sampler.batch_size_per_image == 512
    assert roi.fg_bg_sampler.positive_fraction == 0.25
    assert (roi.score_thresh, roi.nms_thresh, roi.detections_per_img) == (0.05, 0.5, 100)
    assert roi.box_coder.weights == (10.0, 10.0, 5.0, 5.0)
    assert roi.box_roi_pool.featmap_names == ["0", "1", "2", "3"]  # P2–P5, not P6
    assert roi.box_roi_pool.sampling_ratio == 0
    # class-specific regression for the 20 classes only: 20 × 4 outputs, no background box
    assert roi.box_predictor.bbox_pred.out_features == 80
    assert roi.box_predictor.cls_score.out_features == 21


def test_roi_level_assignment_is_detectron2s(r50_fpn) -> None:
    """level = ⌊4 + log2(√area / 224)⌋, clamped to P2–P5."""
    model = r50_fpn.model.eval()
    with torch.no_grad():
        images, _ = model.transform([torch.rand(3, 800, 1216)])
        feats = model.backbone(images.tensors)
        pool = model.roi_heads.box_roi_pool
        pool(feats, [torch.zeros(1, 4)], images.image_sizes)  # sets up the level mapper
    side = torch.tensor([30.0, 111.0, 112.0, 224.0, 447.0, 448.0, 1000.0])
    boxes = torch.stack([torch.zeros(7), torch.zeros(7), side, side], 1)
    levels = pool.map_levels([boxes]) + 2  # P2 is index 0
    assert levels.tolist() == [2, 2, 3, 4, 4, 5, 5]


def test_convnext_fpn_has_groupnorm_as_the_study() -> None:
    """mind_back: "For stability of training, we use GN for convnext" — GroupNorm(32) after
    every FPN conv, which then has no bias; other backbones keep detectron2's plain FPN."""
    from torch import nn

    def fpn_of(backbone: str):
        spec = RunSpec(
            family="pascal", engine="frcnn_fpn", backbone=BackboneSpec(backbone, "none"),
            recipe=RecipeSpec("ft"), train_split="a", id_split="b", ood_splits=(),
            corruption=None, schedule=Schedule(iterations=1, batch_size=2, lr=0.01), seed=0)
        return build_detector(spec, 20).model.backbone.fpn

    convnext = fpn_of("convnext_tiny")
    norms = [m for m in convnext.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 8 and all(n.num_groups == 32 for n in norms)  # 4 lateral + 4 output
    assert all(c.bias is None for c in convnext.modules() if isinstance(c, nn.Conv2d))
    resnet = fpn_of("resnet18")
    assert not any(isinstance(m, nn.GroupNorm) for m in resnet.modules())
    assert all(c.bias is not None for c in resnet.modules() if isinstance(c, nn.Conv2d))


# ---- detectron2's losses and pooling (both geometries) ----------------------------------------
def test_roi_align_is_detectron2s_aligned_v2() -> None:
    """On a feature map whose value is the column index (constant gradient 1 in x), at scale
    1, the box x 2..6 pools (one bin, 2×2 samples) to the feature at its centre x = 4 under
    the half-pixel convention of ROIAlignV2: pixel i's centre is at i + 0.5, so 4 − 0.5 = 3.5
    (samples at 2.5 and 4.5). aligned=False samples at 3 and 5 and gives 4."""
    from benchmark.models.torchvision_frcnn import AlignedMultiScaleRoIAlign

    feat = torch.arange(8.0).repeat(8, 1)[None, None]  # (1, 1, 8, 8), value = x
    pool = AlignedMultiScaleRoIAlign(["0"], output_size=1, sampling_ratio=2)
    out = pool({"0": feat}, [torch.tensor([[2.0, 0.0, 6.0, 4.0]])], [(8, 8)])
    assert out.item() == pytest.approx(3.5)


def test_box_head_loss_is_l1_over_all_sampled_rois() -> None:
    """Two sampled RoIs, one foreground of class 1: L1 = |0.1| + |−0.2| + |0.05| + |0.3| =
    0.65, divided by the 2 sampled RoIs = 0.325 (torchvision's smooth-L1 with β = 1/9 gives
    (0.5·0.1²·9 + (0.2 − 1/18) + 0.5·0.05²·9 + (0.3 − 1/18)) / 2 = 0.2225). Zero logits over 3
    classes: cross-entropy ln 3."""
    from benchmark.models.torchvision_frcnn import box_head_losses

    deltas = torch.zeros(2, 3 * 4)
    deltas[0, 4:8] = torch.tensor([0.1, -0.2, 0.05, 0.0])  # class 1's deltas of RoI 0
    targets = [torch.tensor([[0.0, 0.0, 0.0, 0.3], [9.0, 9.0, 9.0, 9.0]])]  # RoI 1: ignored
    cls, box = box_head_losses(torch.zeros(2, 3), deltas, [torch.tensor([1, 0])], targets)
    assert box.item() == pytest.approx(0.325)
    assert cls.item() == pytest.approx(torch.log(torch.tensor(3.0)).item())


def test_rpn_losses_are_normalised_by_batch_size_per_image_times_images() -> None:
    """One image, anchors labelled (1, 0, 0, −1): 3 sampled of BATCH_SIZE_PER_IMAGE 4. With
    zero logits the BCE sum is 3 ln 2, divided by 4 · 1 = 0.5199 (torchvision: the mean over
    the 3 sampled, ln 2); the positive anchor's deltas (0.5, 0, 0, −0.25) against 0 give
    L1 0.75 / 4 = 0.1875."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.rpn import RPNHead

    from benchmark.models.torchvision_frcnn import DetectronRPN

    rpn = DetectronRPN(AnchorGenerator(), RPNHead(1, 1), 0.7, 0.3, 4, 0.5,
                       {"training": 1, "testing": 1}, {"training": 1, "testing": 1}, 0.7)
    deltas = torch.zeros(4, 4)
    deltas[0] = torch.tensor([0.5, 0.0, 0.0, -0.25])
    obj, box = rpn.compute_loss(torch.zeros(4, 1), deltas, [torch.tensor([1.0, 0.0, 0.0, -1.0])],
                                [torch.zeros(4, 4)])
    assert obj.item() == pytest.approx(3 * torch.log(torch.tensor(2.0)).item() / 4)
    assert box.item() == pytest.approx(0.1875)


@pytest.mark.parametrize("engine", ["frcnn_fpn", "frcnn_fpn_small"])
def test_both_geometries_use_detectron2s_losses_and_pooling(engine, r50_fpn) -> None:
    from benchmark.models.torchvision_frcnn import (
        AlignedMultiScaleRoIAlign,
        DetectronRoIHeads,
        DetectronRPN,
    )

    if engine == "frcnn_fpn":
        model = r50_fpn
    else:
        spec = RunSpec(
            family="demo", engine=engine, backbone=BackboneSpec("resnet18", "none"),
            recipe=RecipeSpec("ft"), train_split="t", id_split="v", ood_splits=(),
            corruption=None, schedule=Schedule(iterations=1, batch_size=2, lr=0.01,
                                               train_sizes=(128,), test_size=128, max_size=256),
            seed=0,
        )
        model = build_detector(spec, 3)
    assert type(model.model.rpn) is DetectronRPN
    assert type(model.model.roi_heads) is DetectronRoIHeads
    assert type(model.model.roi_heads.box_roi_pool) is AlignedMultiScaleRoIAlign


def test_box_head_initialised_as_detectron2(r50_fpn) -> None:
    """detectron2@02b5c4e2 fast_rcnn.py:241-244 (class scores N(0, 0.01), box deltas
    N(0, 0.001), zero biases) and box_head.py:79 (c2_xavier_fill: Kaiming-uniform a = 1,
    i.e. U(±sqrt(3 / fan_in)), zero bias) — not nn.Linear's default U(±1 / sqrt(fan_in))."""
    heads = r50_fpn.model.roi_heads
    cls, box = heads.box_predictor.cls_score, heads.box_predictor.bbox_pred
    assert abs(cls.weight.std().item() - 0.01) < 0.0005
    assert abs(box.weight.std().item() - 0.001) < 0.00005
    assert not cls.bias.any() and not box.bias.any()
    fc6 = heads.box_head.fc6  # fan_in 256·7·7 = 12,544
    bound = math.sqrt(3 / 12_544)
    assert not fc6.bias.any()
    assert bound * 0.99 < fc6.weight.abs().max().item() <= bound
