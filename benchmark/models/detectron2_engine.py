"""detectron2's GeneralizedRCNN (FPN + RPN + StandardROIHeads) as a detector engine.

detectron2 is optional: users build it from source on their cluster
(https://detectron2.readthedocs.io/en/latest/tutorials/install.html). It is imported only when
a builder runs, so the suite imports without it; grid validation asks
:func:`check_available` (the builders' ``check_available`` attribute) and names what to
install.

Two names, one per geometry of the torchvision engine (its :class:`Geometry` numbers go into
a detectron2 ``CfgNode``, so both engines build the same detector for the same grid cell):
``detectron2`` is ``frcnn_fpn`` (detectron2's R50-FPN: P2–P6, anchors 32–512, test score
0.05, NMS 0.5), ``detectron2_small`` is ``frcnn_fpn_small`` (the CPU demo: P3–P6, anchors
16–128). One difference is detectron2's own: its box predictor has no background box, so
``detectron2_small`` has ``head_dim·4 + 4`` parameters fewer than ``frcnn_fpn_small``.

What stays detectron2's (the torchvision engine's docstring lists them as its differences):
RoIAlign ``aligned=True`` (ROIAlignV2) and L1 box losses (smooth-L1 β = 0); loss names are
detectron2's (``loss_rpn_cls``, ``loss_rpn_loc``, ``loss_cls``, ``loss_box_reg``).

Inputs follow the contract (RGB [0, 1] at stored size, 0-based labels, which detectron2
uses natively). They are resized exactly as the torchvision engine resizes them (its
``GeneralizedRCNNTransform.resize``: the same size draw from the global RNG, the same
bilinear interpolation), scaled to 0–255 RGB and normalised by GeneralizedRCNN with the
body's RGB statistics; detections come back in the input image's coordinates.

Prepared splits register in detectron2's catalogs under ``<split>@<content fingerprint>``
(:func:`register_split`): detectron2 caches converted annotations by dataset name, so a
changed split gets a new name instead of a stale cache.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from benchmark.data.split import PreparedSplit, ResolvedSplit
from benchmark.errors import ConfigError, DataError
from benchmark.models import study_input
from benchmark.models.backbones import Body, build_body
from benchmark.models.engine import ENGINES, Detector
from benchmark.models.geometry import FRCNN_FPN, FRCNN_FPN_SMALL, Geometry, detector_fields
from benchmark.models.study_input import StudyTransform

if TYPE_CHECKING:
    from benchmark.spec import RunSpec

INSTALL_DOC = "https://detectron2.readthedocs.io/en/latest/tutorials/install.html"
#: body levels as detectron2 names a bottom-up network's outputs (strides 4, 8, 16, 32)
LEVEL_NAMES = ("res2", "res3", "res4", "res5")


def check_available() -> None:
    """Raise ConfigError naming what to install when detectron2 cannot be imported."""
    try:
        importlib.import_module("detectron2.modeling")
    except ImportError as e:
        raise ConfigError(
            f"detectron2 is not importable ({e}): it is an optional dependency built from "
            f"source — install it into this environment as {INSTALL_DOC} describes (e.g. "
            "`pip install --no-build-isolation 'git+https://github.com/facebookresearch/"
            "detectron2.git'`), or choose engine frcnn_fpn / frcnn_fpn_small"
        ) from None


# ---- the model --------------------------------------------------------------------------------
def geometry_cfg(g: Geometry, num_classes: int, body: Body) -> Any:
    """detectron2's default config with the torchvision engine's geometry ``g``: the numbers
    its docstring cites from detectron2's configs/Base-RCNN-FPN.yaml and config/defaults.py
    (facebookresearch/detectron2@02b5c4e2), set here rather than trusted to defaults."""
    from detectron2.config import get_cfg

    levels = LEVEL_NAMES if g.p2 else LEVEL_NAMES[1:]
    fpn_levels = [f"p{int(n[3:])}" for n in levels]
    cfg = get_cfg()
    m = cfg.MODEL
    m.PIXEL_MEAN = list(body.rgb_pixel_mean)  # 0–255 RGB: the statistics of the weights
    m.PIXEL_STD = list(body.rgb_pixel_std)
    cfg.INPUT.FORMAT = "RGB"
    m.FPN.IN_FEATURES = list(levels)
    m.FPN.OUT_CHANNELS = g.fpn_channels
    m.FPN.NORM = body.fpn_norm  # "GN" where the studies put it (ConvNeXt), else none
    m.FPN.FUSE_TYPE = "sum"
    m.ANCHOR_GENERATOR.SIZES = [[s] for s in g.anchor_sizes]  # one size per P level
    m.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
    m.RPN.IN_FEATURES = [*fpn_levels, f"p{int(levels[-1][3:]) + 1}"]  # + max-pooled level
    m.RPN.PRE_NMS_TOPK_TRAIN, m.RPN.PRE_NMS_TOPK_TEST = g.rpn_pre_nms_train, g.rpn_pre_nms_test
    m.RPN.POST_NMS_TOPK_TRAIN = g.rpn_post_nms_train
    m.RPN.POST_NMS_TOPK_TEST = g.rpn_post_nms_test
    m.RPN.NMS_THRESH = 0.7  # torchvision's rpn_nms_thresh default = detectron2's
    m.ROI_HEADS.NAME = "StandardROIHeads"
    m.ROI_HEADS.IN_FEATURES = fpn_levels
    m.ROI_HEADS.NUM_CLASSES = num_classes
    m.ROI_HEADS.BATCH_SIZE_PER_IMAGE = g.rois_per_image
    m.ROI_HEADS.POSITIVE_FRACTION = 0.25
    m.ROI_HEADS.SCORE_THRESH_TEST = g.score_threshold
    m.ROI_HEADS.NMS_THRESH_TEST = 0.5  # torchvision's box_nms_thresh default = detectron2's
    m.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    m.ROI_BOX_HEAD.NUM_FC = 2
    m.ROI_BOX_HEAD.FC_DIM = g.head_dim
    m.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
    m.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = g.sampling_ratio
    m.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
    cfg.TEST.DETECTIONS_PER_IMAGE = g.detections_per_image
    m.MASK_ON = False
    m.DEVICE = "cpu"  # built on the CPU; the pipeline moves the detector
    return cfg


def body_level_outputs(body: Body, x: torch.Tensor, levels: tuple[str, ...],
                       detach: bool) -> dict[str, torch.Tensor]:
    """``body.levels(x)`` renamed res2…res5, the ``levels`` of them; with ``detach`` (DP)
    detached, so no gradient reaches the body. Needs no detectron2 (tested without it)."""
    feats = dict(zip(LEVEL_NAMES, body.levels(x).values(), strict=True))
    return {n: (feats[n].detach() if detach else feats[n]) for n in levels}


class BodyLevels(nn.Module):
    """What the detectron2 ``Backbone`` around the suite's body computes
    (:func:`body_level_outputs`), as a plain module: ``body`` (its tensors keep the names
    ``body.*``), ``detach_body`` (set by :meth:`Detectron2FasterRCNN.set_detach_body`)."""

    def __init__(self, body: Body, levels: tuple[str, ...]) -> None:
        super().__init__()
        self.body = body
        self.detach_body = False
        self.out_levels = tuple(levels)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return body_level_outputs(self.body, x, self.out_levels, self.detach_body)


def _body_backbone(body: Body, levels: tuple[str, ...]) -> nn.Module:
    """The suite's body as a detectron2 ``Backbone`` with ``levels`` (res2…res5) outputs."""
    from detectron2.layers import ShapeSpec
    from detectron2.modeling import Backbone

    class BodyBackbone(BodyLevels, Backbone):
        """Body.levels() renamed res2…res5; ``detach_body`` detaches them (DP)."""

        def __init__(self) -> None:
            super().__init__(body, levels)  # BodyLevels, then Backbone's (no arguments)
            assert body.level_channels is not None
            channels = dict(zip(LEVEL_NAMES, body.level_channels, strict=True))
            self._shapes = {
                n: ShapeSpec(channels=channels[n], stride=2 ** int(n[3:])) for n in levels
            }

        def output_shape(self) -> dict[str, Any]:
            return dict(self._shapes)

    return BodyBackbone()


def build_generalized_rcnn(cfg: Any, body: Body) -> nn.Module:
    """GeneralizedRCNN on ``body``: FPN (+ LastLevelMaxPool) / RPN / StandardROIHeads."""
    from detectron2.modeling import GeneralizedRCNN
    from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool
    from detectron2.modeling.proposal_generator import build_proposal_generator
    from detectron2.modeling.roi_heads import build_roi_heads

    m = cfg.MODEL
    backbone = FPN(
        bottom_up=_body_backbone(body, tuple(m.FPN.IN_FEATURES)),
        in_features=m.FPN.IN_FEATURES,
        out_channels=m.FPN.OUT_CHANNELS,
        norm=m.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=m.FPN.FUSE_TYPE,
    )
    shapes = backbone.output_shape()
    return GeneralizedRCNN(
        backbone=backbone,
        proposal_generator=build_proposal_generator(cfg, shapes),
        roi_heads=build_roi_heads(cfg, shapes),
        pixel_mean=m.PIXEL_MEAN,
        pixel_std=m.PIXEL_STD,
        input_format=cfg.INPUT.FORMAT,
    )


class _TrainForward(nn.Module):
    """GeneralizedRCNN taking the contract's images and targets, returning its loss dict
    (inside the EventStorage its heads log to)."""

    def __init__(self, detector: Detectron2FasterRCNN) -> None:
        super().__init__()
        self.model = detector.model
        self._inputs = detector.inputs

    def forward(
        self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        from detectron2.utils.events import EventStorage

        with EventStorage():
            return self.model(self._inputs(images, targets))


class Detectron2FasterRCNN(Detector):
    def __init__(self, model: nn.Module, train_sizes: tuple[int, ...], test_size: int,
                 max_size: int, study_compat: bool = False, reverse: bool = False) -> None:
        super().__init__()
        self.model = model
        self.train_sizes = tuple(train_sizes)
        self.test_size = test_size
        # resizing only (normalisation is GeneralizedRCNN's): no parameters, no state;
        # study_compat: detectron2's own ResizeShortestEdge (benchmark.models.study_input)
        self.transform = (
            StudyTransform(self.train_sizes, max_size, [0.0] * 3, [1.0] * 3, reverse=False)
            if study_compat else
            GeneralizedRCNNTransform(self.train_sizes, max_size, [0.0] * 3, [1.0] * 3))
        self.reverse = reverse  # the channels reversed before normalisation (mind_back's BGR)

    @property
    def body(self) -> Body:  # type: ignore[override]
        return self.model.backbone.bottom_up.body

    def inputs(
        self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None
    ) -> list[dict[str, Any]]:
        """detectron2's batched inputs: resized 0–255 RGB images, ``instances`` (resized
        boxes, 0-based classes) with targets, the stored size for postprocessing."""
        from detectron2.structures import Boxes, Instances

        self.transform.training = self.model.training
        out = []
        for i, image in enumerate(images):
            target = None if targets is None else {"boxes": targets[i]["boxes"]}
            resized, target = self.transform.resize(image, target)
            if self.reverse:
                resized = resized.flip(0)
            item: dict[str, Any] = {"image": resized * 255.0, "height": image.shape[-2],
                                    "width": image.shape[-1]}
            if targets is not None:
                assert target is not None
                inst = Instances(tuple(resized.shape[-2:]))
                inst.gt_boxes = Boxes(target["boxes"])
                inst.gt_classes = targets[i]["labels"].to(torch.int64)
                item["instances"] = inst
            out.append(item)
        return out

    def train_module(self) -> nn.Module:
        return _TrainForward(self)  # not a submodule: the state dict stays "model.*"

    def prepare_train(self) -> None:
        self.model.train()
        self.transform.min_size = self.train_sizes  # one drawn per image (global RNG)

    @torch.no_grad()
    def predict(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.model.eval()
        self.transform.min_size = (self.test_size,)
        outs = self.model(self.inputs(images))
        return [
            {"boxes": inst.pred_boxes.tensor, "labels": inst.pred_classes,
             "scores": inst.scores}
            for inst in (o["instances"] for o in outs)
        ]

    def set_detach_body(self, detach: bool) -> None:
        self.model.backbone.bottom_up.detach_body = detach

    def body_state_prefix(self) -> str:
        return "model.backbone.bottom_up.body."


def build_detectron2(geometry: Geometry, spec: RunSpec, num_classes: int) -> Detectron2FasterRCNN:
    check_available()
    b = spec.backbone
    body = build_body(b.name, b.weights, b.freeze_at, strict=b.strict, drop_path=b.drop_path,
                      norm=b.norm)
    if b.study_compat and b.weights != "none":
        study_input.perturb_batchnorm(body)
    cfg = geometry_cfg(geometry, num_classes, body)
    sched = spec.schedule
    return Detectron2FasterRCNN(build_generalized_rcnn(cfg, body), sched.train_sizes,
                                sched.test_size, sched.max_size, b.study_compat,
                                study_input.reversed_channels(b.weights, b.study_compat))


def detectron2_card(geometry: Geometry, spec: RunSpec) -> tuple[dict[str, str], dict[str, str]]:
    """``card`` of the detectron2 engines: the geometry's numbers as detectron2 builds them
    (its box predictor never has a background box: detectron2@02b5c4e2
    detectron2/modeling/roi_heads/fast_rcnn.py:236-239)."""
    b = spec.backbone
    return (detector_fields(replace(geometry, background_box=False), "faster_rcnn_fpn"),
            study_input.input_fields(b.weights, b.norm, b.study_compat))


def _builder(geometry: Geometry) -> Any:
    build = partial(build_detectron2, geometry)
    build.check_available = check_available  # type: ignore[attr-defined]  (grid validation)
    build.card = partial(detectron2_card, geometry)  # type: ignore[attr-defined]
    return build


ENGINES.register("detectron2")(_builder(FRCNN_FPN))
ENGINES.register("detectron2_small")(_builder(FRCNN_FPN_SMALL))


# ---- the catalogs -----------------------------------------------------------------------------
def catalog_name(split: PreparedSplit | ResolvedSplit) -> str:
    """``<split>@<first 16 hex of its content fingerprint>``: a split whose annotations or
    images change gets a new catalog name, so nothing cached under the old one is reused."""
    return f"{split.name}@{split.fingerprint[:16]}"


def dataset_dicts(split: PreparedSplit) -> list[dict[str, Any]]:
    """detectron2's standard dataset dicts of a prepared split (0-based category ids)."""
    from detectron2.structures import BoxMode

    coco = split.coco
    index = {c["id"]: i for i, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
    per_image: dict[Any, list[dict[str, Any]]] = {img["id"]: [] for img in coco["images"]}
    for a in coco["annotations"]:
        per_image[a["image_id"]].append({
            "bbox": list(a["bbox"]), "bbox_mode": BoxMode.XYWH_ABS,
            "category_id": index[a["category_id"]], "iscrowd": a.get("iscrowd", 0),
            "difficult": a.get("difficult", 0),
        })
    return [
        {"file_name": str(split.image_path(img["file_name"])), "height": img["height"],
         "width": img["width"], "image_id": img["id"], "annotations": per_image[img["id"]]}
        for img in coco["images"]
    ]


def register_split(split: PreparedSplit | ResolvedSplit) -> str:
    """Register ``split`` in DatasetCatalog / MetadataCatalog (once per name); its name."""
    check_available()
    from detectron2.data import DatasetCatalog, MetadataCatalog

    if isinstance(split, ResolvedSplit):
        if split.corruption is not None:
            raise DataError(
                f"{split.name}: corrupted on the fly, it has no image files for detectron2's "
                f"loaders (build it: `python -m benchmark.prepare corrupt {split.split.name}`)"
            )
        split = split.split
    name = catalog_name(split)
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, partial(dataset_dicts, split))
        cats = sorted(split.coco["categories"], key=lambda c: c["id"])
        MetadataCatalog.get(name).set(
            thing_classes=split.classes,
            thing_dataset_id_to_contiguous_id={c["id"]: i for i, c in enumerate(cats)},
            json_file=str(split.annotation_path),
            image_root=str(split.image_root),
            evaluator_type="coco",
            fingerprint=split.fingerprint,
        )
    return name
