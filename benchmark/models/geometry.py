"""The numbers that size a Faster / Mask R-CNN + FPN, and the protocol-card fields they give.

torch-free: grid validation, ``describe`` and the protocol card read these without building
a detector. Both engines build from a :class:`Geometry` — the torchvision engines
(:mod:`benchmark.models.torchvision_frcnn`) and detectron2 (:mod:`benchmark.models.
detectron2_engine`, which writes the same numbers into a detectron2 config) — so the card's
detector fields (:func:`detector_fields`) state what both build.
"""

from __future__ import annotations

from dataclasses import dataclass


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


def anchor_strides(geometry: Geometry) -> tuple[int, ...]:
    """The stride of every FPN level the RPN sees: P2–P6 (4 … 64) with ``p2``, else P3–P6."""
    strides = (4, 8, 16, 32, 64) if geometry.p2 else (8, 16, 32, 64)
    assert len(strides) == len(geometry.anchor_sizes)
    return strides


def roi_levels(geometry: Geometry) -> list[str]:
    """The FPN levels RoIs pool from: P2–P5 with ``p2``, else P3–P5 (never the max-pooled
    top level, which only the RPN sees)."""
    return ["0", "1", "2", "3"] if geometry.p2 else ["0", "1", "2"]


def _levels(lo: int, hi: int) -> str:
    return f"P{lo}-P{hi}"


def detector_fields(g: Geometry, architecture: str) -> dict[str, str]:
    """The protocol card's detector fields (:class:`benchmark.protocol_card.DetectorCard`) of
    geometry ``g`` as the suite's engines build it (torchvision's modules with detectron2's
    anchors, pooling, losses and head initialisation; the detectron2 engine builds the same
    numbers natively). Every value states numbers, so two engines agree only when the
    detectors do."""
    lo = 2 if g.p2 else 3
    sizes = "/".join(str(s) for s in g.anchor_sizes)
    strides = "/".join(str(s) for s in anchor_strides(g))
    return {
        "architecture": architecture,
        "fpn": f"{_levels(lo, 5)} + max-pooled P6, {g.fpn_channels} channels, sum fusion",
        "anchors": f"sizes {sizes} (one per level), ratios 0.5/1/2, strides {strides}, "
                   "exact cell anchors, offset 0",
        "rpn": f"pre-NMS top {g.rpn_pre_nms_train}/{g.rpn_pre_nms_test} per level, post-NMS "
               f"top {g.rpn_post_nms_train}/{g.rpn_post_nms_test} per image (train/test), "
               "NMS 0.7, IoU 0.7/0.3",
        "roi_pooler": f"ROIAlignV2 (aligned) 7x7, sampling ratio {g.sampling_ratio}, "
                      f"{_levels(lo, 5)}, canonical level 4 at 224",
        "box_head": f"2 FC x {g.head_dim}, class-specific deltas "
                    f"{'with' if g.background_box else 'without'} a background box, "
                    "weights 10/10/5/5",
        "head_init": "detectron2: FCs c2_xavier_fill, scores N(0, 0.01), deltas N(0, 0.001), "
                     "zero biases",
        "losses": "detectron2: L1 box losses (smooth-L1 beta 0), RPN sums / (256 x images), "
                  "RoI cross-entropy and L1 / sampled RoIs",
        "sampler": f"RPN 256 anchors at 0.5 positive; RoI {g.rois_per_image} at 0.25 "
                   "positive, IoU 0.5",
        "test": f"score > {g.score_threshold:g}, NMS 0.5, {g.detections_per_image} per image",
    }


