"""Benchmark families as data: one :class:`Family` entry per family in :data:`FAMILIES`.

A family is a train → ID/OOD/corruption protocol (Pascal → Clipart/Watercolor/Comic, COCO →
COCO-C, …). Everything that differs between families is declared here, once, and read by
grid validation (is ``family`` known, which split roles may a grid declare), by the cell
summary (:func:`benchmark.evaluation.summarize`: the AP protocol of each eval split and of
the summary) and by the report (title, description, headline, ER axes, domain order, columns,
published reference rows).

Contract of a registered object (``FAMILIES.register(name)(Family(...))``):

* ``name`` equals the registry name; it is the value of ``spec.benchmark`` in run records.
* ``split_roles`` ⊆ :data:`SPLIT_ROLES` and contains ``"train"`` and ``"id"``; ``"ood"``
  allows ``ood_splits``, ``"corruption"`` allows a ``corruption`` block.
* ``ap_protocols``: ``(split-name prefix, protocol)`` rules, first match wins, ``""`` matches
  every split; the protocol is ``"voc"`` or ``"voc07"``. A matching eval split is scored with
  that VOC-style AP next to COCO's; no rule: COCO only.
* ``summary_protocol``: ``"coco"``, or ``"voc"`` (the headline of a split is then its
  VOC-style AP; needs ``ap_protocols``).
* ``headline``, ``er_x`` and ``er_y`` are keys of the summary-metric table
  (:data:`benchmark.evaluation.summary_metrics.SUMMARY_METRICS`); checked by the tests.
* ``published``: reference rows from the papers, values as fractions keyed by metric key or
  by a domain substring of ``domains``; each carries its publication's protocol card
  (:data:`SAITO_CARD`, :data:`MICHAELIS_CARD`) in the JSON form of
  :meth:`benchmark.protocol_card.ProtocolCard.to_json`, every value cited.

This module is in the bottom layer: it imports only the standard library,
:mod:`benchmark.registry` and :mod:`benchmark.errors`.

It is over 400 lines because each publication's protocol card and rows are stated here, every
value next to its citation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import ConfigError
from benchmark.registry import Registry

SPLIT_ROLES = ("train", "id", "ood", "corruption")
AP_PROTOCOLS = ("voc", "voc07", "voc_unrounded", "voc07_unrounded")
SUMMARY_PROTOCOLS = ("coco", "voc")


# ---- published reference rows --------------------------------------------------------------
@dataclass(frozen=True)
class PublishedRow:
    """A published result. It *matches* a reproduced row when the family and recipe are equal
    and the reproduced run's weights are a checkpoint of the weights catalogue
    (``benchmark.models.checkpoints.catalogue``; by name, or by the file's sha256) whose
    ``publication`` keys contain ``weights_key`` — never by the look of a file name."""

    family: str
    backbone: str  # as the paper names it
    recipe: str  # the suite's recipe name
    values: dict[str, float]  # metric key or domain → fraction (AP) or ratio (rPC)
    source: str
    weights_key: str  # a catalogue entry's publication key
    derived: tuple[str, ...] = field(default=())  # keys computed here from published values
    # the publication's protocol card (benchmark.protocol_card): a reproduced row is comparable
    # only when its run's card equals every field stated here; None: no card stated
    card: Mapping[str, Any] | None = None


SAITO = ('Saito et al., "Mind the Backbone": Faster R-CNN + FPN, AP@[.5:.95] computed the '
         'VOC way')
MICHAELIS = ('Michaelis et al., "Benchmarking Robustness in Object Detection": Faster R-CNN '
             'R50-FPN on COCO-C')
#: Saito et al.'s protocol, from their code (VisionLearningGroup/mind_back@5e6694f) and the
#: detectron2 defaults it inherits (facebookresearch/detectron2@02b5c4e2). No corruption
#: sweep is published with these rows, so the card states none (not compared).
SAITO_CARD: dict[str, Any] = {
    # detectron2's R50-FPN (mind_back configs/Base-RCNN-FPN.yaml:1-31, configs/Pascal/base.yaml
    # :1 _BASE_) with detectron2's defaults (facebookresearch/detectron2@02b5c4e2, "d2" below)
    "detector": {
        "architecture": "faster_rcnn_fpn",  # Base-RCNN-FPN.yaml META_ARCHITECTURE, MASK_ON off
        # Base-RCNN-FPN.yaml FPN IN_FEATURES res2-res5, d2 modeling/backbone/fpn.py
        # LastLevelMaxPool, defaults.py FPN.OUT_CHANNELS 256, FUSE_TYPE "sum"
        "fpn": "P2-P5 + max-pooled P6, 256 channels, sum fusion",
        # Base-RCNN-FPN.yaml:10-11 SIZES [[32], [64], [128], [256], [512]], ASPECT_RATIOS
        # [[0.5, 1.0, 2.0]]; d2 modeling/anchor_generator.py:173-174 (each level's stride),
        # 205-215 (exact cell anchors), defaults.py:195 OFFSET 0.0
        "anchors": "sizes 32/64/128/256/512 (one per level), ratios 0.5/1/2, strides "
                   "4/8/16/32/64, exact cell anchors, offset 0",
        # Base-RCNN-FPN.yaml:14-15 PRE_NMS_TOPK 2000/1000 (per level), 19-20 POST_NMS_TOPK
        # 1000/1000; d2 defaults.py RPN.NMS_THRESH 0.7, IOU_THRESHOLDS [0.3, 0.7]
        "rpn": "pre-NMS top 2000/1000 per level, post-NMS top 1000/1000 per image "
               "(train/test), NMS 0.7, IoU 0.7/0.3",
        # Base-RCNN-FPN.yaml:23 ROI_HEADS IN_FEATURES p2-p5, POOLER_RESOLUTION 7; d2
        # defaults.py:306 POOLER_SAMPLING_RATIO 0, 308 POOLER_TYPE ROIAlignV2; poolers.py:54
        # canonical level 4 at box size 224
        "roi_pooler": "ROIAlignV2 (aligned) 7x7, sampling ratio 0, P2-P5, canonical level 4 "
                      "at 224",
        # Base-RCNN-FPN.yaml:26 NUM_FC 2, d2 defaults.py:312 FC_DIM 1024; fast_rcnn.py:236-239
        # (class-specific deltas for the K object classes), BBOX_REG_WEIGHTS (10, 10, 5, 5)
        "box_head": "2 FC x 1024, class-specific deltas without a background box, "
                    "weights 10/10/5/5",
        # d2 box_head.py:79 c2_xavier_fill, fast_rcnn.py:241-244 N(0, 0.01) / N(0, 0.001)
        "head_init": "detectron2: FCs c2_xavier_fill, scores N(0, 0.01), deltas N(0, 0.001), "
                     "zero biases",
        # d2 defaults.py:230, 304 SMOOTH_L1_BETA 0.0; rpn.py:405-427 (sums / (256 x images));
        # fast_rcnn.py:344, 424-463
        "losses": "detectron2: L1 box losses (smooth-L1 beta 0), RPN sums / (256 x images), "
                  "RoI cross-entropy and L1 / sampled RoIs",
        # d2 defaults.py:221 RPN.BATCH_SIZE_PER_IMAGE 256, POSITIVE_FRACTION 0.5; 269
        # ROI_HEADS.BATCH_SIZE_PER_IMAGE 512, 271 POSITIVE_FRACTION 0.25, IOU_THRESHOLDS [0.5]
        "sampler": "RPN 256 anchors at 0.5 positive; RoI 512 at 0.25 positive, IoU 0.5",
        # d2 defaults.py:280 SCORE_THRESH_TEST 0.05, 283 NMS_THRESH_TEST 0.5, TEST
        # DETECTIONS_PER_IMAGE 100
        "test": "score > 0.05, NMS 0.5, 100 per image",
    },
    # how mind_back fed its bodies (benchmark/models/study_input.py states each value)
    "input": {
        # INPUT.FORMAT never set: d2 defaults.py:84 "BGR" images into RGB-trained bodies
        "channel_order": "reversed",
        # configs/Pascal/base.yaml:5-6, tools/map_backbone.py:11-21: the weights' statistics
        "pixel_stats": "weights",
        # src/modeling/backbone/fpn.py:619, 714, 841: a train-mode forward of torch.rand(2, 3,
        # 224, 224) before the BatchNorm layers are frozen
        "bn": "frozen after one train-mode forward of U(0, 1) noise (2x3x224x224)",
        # d2 data/transforms/augmentation_impl.py:134-200 ResizeShortestEdge, PIL bilinear
        "resize": "detectron2 ResizeShortestEdge: PIL bilinear on uint8, size int(x + 0.5)",
    },
    # configs/Pascal/base.yaml:16 MIN_SIZE_TRAIN (480, 512, ..., 800)
    "train_sizes": [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800],
    # detectron2 defaults: detectron2/config/defaults.py:61 MAX_SIZE_TRAIN = 65 MAX_SIZE_TEST
    # = 1333 (not overridden by mind_back's configs)
    "max_size": 1333,
    "test_size": 800,  # configs/Pascal/base.yaml:17 MIN_SIZE_TEST
    "schedule": {
        "iterations": 80000,  # configs/Pascal/base.yaml:23 MAX_ITER
        "batch_size": 2,  # configs/Pascal/base.yaml:25 IMS_PER_BATCH
        "lr": 0.0025,  # configs/Pascal/base.yaml:24 BASE_LR (DP and FT alike)
        # detectron2/config/defaults.py:526 WarmupMultiStepLR, × GAMMA 0.1 (:543) at STEPS
        "policy": "step",
        "steps": [50000, 70000],  # configs/Pascal/base.yaml:22 STEPS
        "warmup_iters": 500,  # configs/Pascal/base.yaml:26 WARMUP_ITERS
    },
    "evaluator": {
        # src/data/builtin.py:43 registers voc_2007_* as year 2007, clipart / water / comic
        # as 2012; src/evaluator/pascal_voc_evaluator.py:45,105: use_07_metric (11-point)
        # for 2007 only, area under the curve otherwise
        "ap": {"id": "voc07", "ood": "voc"},
        # pascal_voc_evaluator.py:111-113: AP = mean over IoU .50:.95 of the VOC-style AP
        "summary": "voc",
    },
}
#: Michaelis et al.'s COCO-C baseline: mmdetection v1's faster_rcnn_r50_fpn_1x
#: (open-mmlab/mmdetection@72635ed configs/faster_rcnn_r50_fpn_1x.py) tested with
#: tools/test_robustness.py (open-mmlab/mmdetection@88d042a).
MICHAELIS_CARD: dict[str, Any] = {
    # mmdetection's own R50-FPN, not detectron2's: no engine of the suite has these fields,
    # so no run's card equals this one
    "detector": {
        "architecture": "faster_rcnn_fpn",
        # train_cfg.rpn_proposal nms_pre=2000, max_num=2000 (per image), nms_thr=0.7
        "rpn": "mmdetection v1: 2000 proposals per image in training, NMS 0.7",
        # bbox_roi_extractor RoIAlign out_size=7, sample_num=2 (not aligned in v1)
        "roi_pooler": "mmdetection v1 RoIAlign 7x7, sample_num 2",
        # bbox_head SharedFCBBoxHead num_fcs=2, fc_out_channels=1024, num_classes=81 (a box
        # for the background class), reg_class_agnostic=False
        "box_head": "2 FC x 1024, class-specific deltas with a background box",
        # rpn_head loss_bbox SmoothL1Loss beta=1.0 / 9.0; bbox_head SmoothL1Loss beta=1.0
        "losses": "mmdetection v1: smooth-L1 beta 1/9 (RPN) and 1 (RoI)",
    },
    "train_sizes": [800],  # train_pipeline Resize img_scale=(1333, 800): short side 800
    "max_size": 1333,  # ... long side at most 1333
    "test_size": 800,  # test_pipeline MultiScaleFlipAug img_scale=(1333, 800)
    "schedule": {
        # total_epochs = 12 of COCO train2017's 117,266 annotated images (mmdetection drops
        # images without boxes) at 16 images per iteration: 12 × ceil(117266 / 16) = 87,960
        # (derived: mmdetection counts epochs, not iterations)
        "iterations": 87960,
        # data.imgs_per_gpu=2 on 8 GPUs (docs/GETTING_STARTED.md: "The default learning rate
        # in config files is for 8 GPUs and 2 img/gpu (batch size = 8*2 = 16)")
        "batch_size": 16,
        "lr": 0.02,  # optimizer lr=0.02
        "policy": "step",  # lr_config policy='step' (× 0.1 at each step)
        "steps": [58640, 80630],  # lr_config step=[8, 11] epochs × 7,330 iterations
        "warmup_iters": 500,  # lr_config warmup_iters=500
    },
    "evaluator": {
        # CocoDataset: COCOeval bbox AP@[.5:.95] on clean and corrupted val2017
        # (tools/test_robustness.py coco_eval_with_return)
        "ap": {"clean": "coco", "corrupted": "coco"},
        "summary": "coco",
    },
    # tools/test_robustness.py: the Corrupt transform is inserted at pipeline index 1, right
    # after LoadImageFromFile (which returns BGR); --severities default [0, 1, 2, 3, 4, 5]
    # (0 = the clean set)
    "corruption": {"channel_order": "bgr", "severities": [1, 2, 3, 4, 5]},
}
# publication keys of the catalogue entries (benchmark/models/checkpoints/catalogue.py)
R50_IG = "swsl_r50"
EFFB2_JFT = "effb2_ns"
CONVNEXT_B_21K = "convnext_b_22k"
TORCHVISION_R50 = "torchvision_r50"


def _pascal(backbone: str, recipe: str, comic: float, watercolor: float, clipart: float,
            pascal: float, match: str) -> PublishedRow:
    # in the order of the reproduced table's columns
    values = {"id_ap": pascal / 100, "clipart": clipart / 100, "watercolor": watercolor / 100,
              "comic": comic / 100}
    values["ood_mean"] = (values["comic"] + values["watercolor"] + values["clipart"]) / 3
    values["gap"] = values["id_ap"] - values["ood_mean"]
    return PublishedRow("pascal", backbone, recipe, values, SAITO, match,
                        derived=("ood_mean", "gap"), card=SAITO_CARD)


# ---- the family entry ----------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    name: str
    title: str
    description: str
    split_roles: tuple[str, ...]
    headline: str  # summary-metric key the report ranks rows by (descending)
    er_x: str  # ID axis of the effective-robustness fit (summary-metric key)
    er_y: str  # OOD axis
    domains: tuple[str, ...] = ()  # preferred order of OOD splits (substrings of split names)
    ap_protocols: tuple[tuple[str, str], ...] = ()  # (split prefix, "voc" | "voc07")
    summary_protocol: str = "coco"
    id_ap50: bool = False  # report: show ID AP50
    rgn_l2: bool = False  # report: show RGN (L2)
    published: tuple[PublishedRow, ...] = ()

    def __post_init__(self) -> None:
        where = f"family {self.name!r}"
        if not {"train", "id"} <= set(self.split_roles) <= set(SPLIT_ROLES):
            raise ConfigError(f"{where}: split_roles={self.split_roles!r}: must contain train "
                              f"and id, and only {', '.join(SPLIT_ROLES)}")
        for prefix, protocol in self.ap_protocols:
            if protocol not in AP_PROTOCOLS:
                raise ConfigError(f"{where}: ap_protocols[{prefix!r}]={protocol!r}: expected "
                                  f"one of {', '.join(AP_PROTOCOLS)}")
        if self.summary_protocol not in SUMMARY_PROTOCOLS:
            raise ConfigError(f"{where}: summary_protocol={self.summary_protocol!r}: expected "
                              f"one of {', '.join(SUMMARY_PROTOCOLS)}")
        if self.summary_protocol != "coco" and not self.ap_protocols:
            raise ConfigError(f"{where}: summary_protocol={self.summary_protocol!r} needs "
                              "ap_protocols")
        for row in self.published:
            if row.family != self.name:
                raise ConfigError(f"{where}: published row {row.backbone!r} is for family "
                                  f"{row.family!r}")

    def ap_protocol(self, split: str) -> str | None:
        """The VOC-style protocol scored next to COCO's on ``split``, or None (COCO only)."""
        for prefix, protocol in self.ap_protocols:
            if split.startswith(prefix):
                return protocol
        return None

    @property
    def ood(self) -> bool:
        """Grids of this family may declare OOD splits (the report shows OOD columns)."""
        return "ood" in self.split_roles

    @property
    def corruption(self) -> bool:
        """Grids may declare corruptions (the report shows P / mPC / rPC when recorded)."""
        return "corruption" in self.split_roles

    @property
    def voc(self) -> bool:
        """Some eval splits carry VOC-style AP next to COCO's."""
        return bool(self.ap_protocols)


FAMILIES: Registry[Family] = Registry("benchmark family")


def register_family(family: Family) -> Family:
    """``FAMILIES.register(family.name)(family)``: one line per family."""
    return FAMILIES.register(family.name)(family)


def report_order(names: set[str] | list[str]) -> list[str]:
    """Family names in report order: registered ones in registration order, others by name."""
    known = [f.name for f in FAMILIES.in_order() if f.name in set(names)]
    return known + sorted(set(names) - set(known))


register_family(Family(
    "pascal", "Pascal VOC → Clipart / Watercolor / Comic",
    "Faster R-CNN trained on VOC 2007+2012 trainval, evaluated on VOC 2007 test (ID) "
    "and the Clipart1k, Watercolor2k and Comic2k test splits (OOD; Watercolor and "
    "Comic annotate 6 classes, classes without ground truth are skipped).",
    split_roles=("train", "id", "ood", "corruption"),
    headline="ood_mean", er_x="id_ap", er_y="ood_mean",
    domains=("clipart", "watercolor", "comic"),
    # 11-point AP on VOC2007 test (and its -C copies), area under the curve elsewhere
    ap_protocols=(("voc07_test", "voc07"), ("", "voc")), summary_protocol="voc",
    published=(
        _pascal("ResNet-50 (Instagram SWSL)", "dp", 15.7, 21.2, 15.3, 44.6, R50_IG),
        _pascal("ResNet-50 (Instagram SWSL)", "ft", 7.5, 19.4, 11.4, 50.4, R50_IG),
        _pascal("EfficientNet-B2 (Noisy Student, JFT)", "dp", 12.6, 20.4, 15.1, 40.2,
                EFFB2_JFT),
        _pascal("EfficientNet-B2 (Noisy Student, JFT)", "ft", 17.1, 27.2, 18.0, 53.4,
                EFFB2_JFT),
        _pascal("ConvNeXt-B (IN-22k)", "dp", 11.7, 17.3, 14.0, 39.7, CONVNEXT_B_21K),
        _pascal("ConvNeXt-B (IN-22k)", "ft", 11.5, 22.9, 16.8, 60.6, CONVNEXT_B_21K),
    ),
))
register_family(Family(
    "cityscapes", "Cityscapes → Foggy Cityscapes / BDD100K",
    "Trained on Cityscapes (8 thing classes), evaluated on Cityscapes val (ID), Foggy "
    "Cityscapes (β = 0.02) and BDD100K val (OOD). Detector: Mask R-CNN R50-FPN (engine "
    "mrcnn_fpn), as the study; box AP is the OOD comparison, mask AP is reported next to it.",
    split_roles=("train", "id", "ood", "corruption"),
    headline="ood_mean", er_x="id_ap", er_y="ood_mean", domains=("foggy", "bdd"),
))
register_family(Family(
    "coco_c", "COCO → COCO-C",
    "Trained on COCO 2017, evaluated on val2017 clean (P) and corrupted (15 benchmark "
    "corruptions × severities 1–5, corruptions applied at the original resolution).",
    split_roles=("train", "id", "corruption"),
    headline="mPC", er_x="P", er_y="mPC",
    published=(
        PublishedRow("coco_c", "ResNet-50 (Faster R-CNN R50-FPN)", "ft",
                     {"P": 0.363, "mPC": 0.182, "rPC": 0.502}, MICHAELIS, TORCHVISION_R50,
                     card=MICHAELIS_CARD),
    ),
))
register_family(Family(
    "coco_o", "COCO → COCO-O",
    "Trained on COCO 2017, evaluated on val2017 (ID) and the six COCO-O domains (OOD).",
    split_roles=("train", "id", "ood"),
    headline="ood_mean", er_x="id_ap", er_y="ood_mean",
    domains=("sketch", "cartoon", "painting", "weather", "handmake", "tattoo"),
))
register_family(Family(
    "demo", "Demo (offline, generated data)",
    "The offline demo: generated photos (ID) vs three stylised renderings of the same "
    "test scenes (OOD), plus corruptions of the ID test split.",
    split_roles=("train", "id", "ood", "corruption"),
    headline="ood_mean", er_x="id_ap", er_y="ood_mean", id_ap50=True, rgn_l2=True,
))


# ---- Yamada & Otani, "Does Robustness on ImageNet Transfer to Downstream Tasks?" -----------
from copy import deepcopy  # noqa: E402  (this section's own import)

YAMADA = ('Yamada & Otani, "Does Robustness on ImageNet Transfer to Downstream Tasks?" (CVPR '
          '2022): Mask R-CNN R50-FPN / Swin-T on COCO-C')
#: Their protocol, from their code (runopti/RobustDownstreamTransfer@a67aae8, mmdetection v2
#: configs under mmdetection/configs/; cited as <file>:<line> below) and the mmdetection /
#: mmcv code it runs. The ResNet-50 card; :func:`yamada_card` gives each row's (the lr, and
#: Swin-T's sizes). Stated only where the code states it: the number of GPUs — so the total
#: batch, and the schedule in iterations — is not in the code (24 epochs, steps after epochs
#: 16 and 22: _base_/schedules/schedule_2x*.py:5-11; samples_per_gpu=6,
#: _base_/datasets/coco_instance.py:32), so iterations, batch size and steps are left out.
YAMADA_CARD: dict[str, Any] = {
    # _base_/models/mask_rcnn_r50_fpn.py (the detector of every ResNet config, and of the
    # Swin configs with the backbone swapped); the suite's phrasing where the numbers agree
    "detector": {
        "architecture": "mask_rcnn_fpn",  # :3 type='MaskRCNN'
        # :14-18 FPN in 256/512/1024/2048, out 256, num_outs=5 (the extra level max-pooled)
        "fpn": "P2-P5 + max-pooled P6, 256 channels, sum fusion",
        # :22-26 AnchorGenerator scales=[8], ratios=[0.5, 1.0, 2.0], strides 4..64
        "anchors": "sizes 32/64/128/256/512 (scale 8 x stride), ratios 0.5/1/2, strides "
                   "4/8/16/32/64, centre offset 0 (mmdet v2 AnchorGenerator)",
        # :72-78 RPN MaxIoUAssigner 0.7 / 0.3; :88-92 rpn_proposal nms_pre=2000,
        # max_per_img=1000, nms 0.7; :111-115 test nms_pre=1000, max_per_img=1000, nms 0.7
        "rpn": "nms_pre 2000/1000, max_per_img 1000/1000 (train/test), NMS 0.7, "
               "IoU 0.7/0.3 (mmdet v2 RPNHead)",
        # :39 RoIAlign output_size=7, sampling_ratio=0 (mmcv's aligned=True default), :41
        # featmap_strides [4, 8, 16, 32]; :58 the mask branch 14x14
        "roi_pooler": "RoIAlign 7x7 sampling 0 aligned (mmdet v2), P2-P5, "
                      "SingleRoIExtractor level mapping; mask 14x14",
        # :42-52 Shared2FCBBoxHead fc_out_channels=1024, num_classes=80,
        # reg_class_agnostic=False, target_stds [0.1, 0.1, 0.2, 0.2]
        "box_head": "2 FC x 1024, class-specific deltas without a background box, "
                    "weights 10/10/5/5",
        "head_init": "mmdetection",
        # :32-34 RPN sigmoid CE + L1Loss; :53-55 RoI softmax CE + L1Loss; :67-68 mask CE
        "losses": "mmdetection: L1 box losses, RPN sigmoid cross-entropy, RoI softmax "
                  "cross-entropy, mask per-pixel cross-entropy, all weight 1",
        # :79-84 RPN RandomSampler num=256, pos_fraction=0.5; :94-106 RoI MaxIoUAssigner 0.5,
        # RandomSampler num=512, pos_fraction=0.25, add_gt_as_proposals=True
        "sampler": "RPN 256 anchors at 0.5 positive; RoI 512 at 0.25 positive, IoU 0.5",
        # :116-120 score_thr=0.05, nms 0.5, max_per_img=100 (mask_thr_binary=0.5)
        "test": "score > 0.05, NMS 0.5, 100 per image",
    },
    "input": {
        # _base_/datasets/coco_instance.py:4-5: to_rgb=True and ImageNet's RGB statistics,
        # those every checkpoint of the study was trained with
        "channel_order": "weights",
        "pixel_stats": "weights",
        # _base_/models/mask_rcnn_r50_fpn.py:10-11 norm_cfg requires_grad=True, norm_eval=True
        # (the value of benchmark.models.study_input.BN_EVAL_AFFINE)
        "bn": "statistics frozen, affine trained (mmdetection norm_eval)",
        # coco_instance.py:9 Resize keep_ratio on the uint8 image: mmcv imrescale, cv2
        # INTER_LINEAR, size int(x * factor + 0.5) (open-mmlab/mmcv@f4167fe1
        # mmcv/image/geometric.py:16-29, 32-34, 196-225)
        "resize": "mmcv imrescale: cv2 bilinear on uint8, size int(x + 0.5)",
    },
    "train_sizes": [800],  # coco_instance.py:9 img_scale=(1333, 800)
    "max_size": 1333,
    "test_size": 800,  # coco_instance.py:20 img_scale=(1333, 800)
    "schedule": {
        # schedule_2x_lr0.04.py:2 SGD lr=0.04 (ANT, DeepAugment + AugMix, PRIME, adversarial,
        # fixed features, PRIME fine-tuning); yamada_card sets each row's
        "lr": 0.04,
        "policy": "step",  # schedule_2x*.py:6 policy='step' (x 0.1 at each step)
        "warmup_iters": 500,  # schedule_2x*.py:7-9 linear from warmup_ratio=0.001
    },
    "evaluator": {
        # tools/analysis_tools/test_robustness.py: COCO bbox AP@[.5:.95] (CocoDataset) on
        # val2017 clean and corrupted (README.md:44 --eval bbox segm)
        "ap": {"id": "coco", "clean": "coco", "corrupted": "coco"},
        "summary": "coco",
    },
    # test_robustness.py:272 Corrupt inserted right after LoadImageFromFile (BGR array);
    # :225-231 the 15 benchmark corruptions; README.md:58 "For all of our examples, we used
    # severities=1"
    "corruption": {"channel_order": "bgr", "severities": [1]},
}


def yamada_card(lr: float, *, swin: bool = False) -> dict[str, Any]:
    """:data:`YAMADA_CARD` at a row's lr; ``swin``: Swin-T's multi-scale training sizes
    (configs/swin/mask_rcnn_swin-t-p4-w7_fpn_ms-crop-2x_coco.py:43-45; AdamW lr 1e-4 at
    :77-82) and no BatchNorm field (the body has none)."""
    card = deepcopy(YAMADA_CARD)
    card["schedule"]["lr"] = lr
    if swin:
        card["input"] = {k: v for k, v in YAMADA_CARD["input"].items() if k != "bn"}
        card["train_sizes"] = [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800]
    return card


#: The study's COCO rows (family coco_c: P, mPC, rPC of each backbone × fixed features / FT /
#: PRIME FT). None stated yet: the paper's tables were not at hand, and the repository
#: (README.md) publishes models and configs, not numbers. A row, once read from the paper:
#: ``PublishedRow("coco_c", "<backbone as the paper names it>", "<recipe>", {"P": …,
#: "mPC": …, "rPC": …}, YAMADA, "<catalogue publication key>", card=yamada_card(<lr>))``
#: — lr 0.02 for the torchvision ResNet-50's FT (configs/mask_rcnn/mask_rcnn_r50_fpn_2x_coco
#: .py:4 schedule_2x.py), 0.04 for every other ResNet-50 cell, yamada_card(1e-4, swin=True)
#: for Swin-T.
YAMADA_ROWS: tuple[PublishedRow, ...] = ()
