"""ResNets: torchvision's ResNet-18/50/101 and ResNeXt-50 32x4d (the layout of the torchvision,
FB semi-(weakly) supervised, robust and converted MSRA checkpoints) and timm's SE-ResNet-50.

Freeze rule: mind_back (VisionLearningGroup/mind_back@5e6694f)
``src/modeling/backbone/fpn.py`` lines 713–718 (``build_resnet_fpn_backbone_resnet``:
``conv1`` + ``layer1`` frozen, then ``FrozenBatchNorm2d.convert_frozen_batchnorm``) for the
torchvision-layout and timm files, and detectron2's ``build_resnet_backbone`` (defaults
``FREEZE_AT=2``, ``NORM="FrozenBN"``, ``STRIDE_IN_1X1=True``) for the MSRA caffe ones (line
578): stem + res2 frozen, every BatchNorm frozen with the checkpoint's statistics (no
train-mode forward before freezing, unlike the study's line 714). From scratch ("none"):
GroupNorm(32) and nothing frozen — batch statistics of a few small images cannot train a
random network.

``norm="eval_affine"`` (torchvision-layout files): every BatchNorm keeps the checkpoint's
running statistics (always the eval-mode normalisation) but its weight and bias train — what
mmdetection's ResNet does with ``norm_cfg=dict(type='BN', requires_grad=True)`` and
``norm_eval=True``, the transfer study's setting (runopti/RobustDownstreamTransfer@a67aae8
``mmdetection/configs/_base_/models/mask_rcnn_r50_fpn.py:9-11``; ``ResNet.train`` puts every
``_BatchNorm`` back in eval mode and leaves ``requires_grad`` alone,
open-mmlab/mmdetection@00e97308 ``mmdet/models/backbones/resnet.py``). The frozen stages
(``freeze_at``, mmdetection's ``frozen_stages=1`` = stem + layer1 = ``freeze_at`` 2) keep
their affine fixed as well. State-dict keys are FrozenBatchNorm2d's, so checkpoints load
either way.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from benchmark.errors import ConfigError
from benchmark.models.backbones._base import (
    BACKBONES,
    NORM_OPTION,
    Body,
    freeze_batchnorm,
    imagenet_is_not_packaged,
    load_source,
    no_stochastic_depth,
    resolve_source,
)
from benchmark.models.checkpoints.catalogue import IMAGENET_RGB

TORCHVISION = {  # name → (constructor, torchvision weights enum of the published file)
    "resnet18": ("resnet18", "ResNet18_Weights.IMAGENET1K_V1"),
    "resnet50": ("resnet50", "ResNet50_Weights.IMAGENET1K_V1"),
    "resnet101": ("resnet101", "ResNet101_Weights.IMAGENET1K_V1"),
    "resnext50_32x4d": ("resnext50_32x4d", "ResNeXt50_32X4D_Weights.IMAGENET1K_V1"),
}


def _published(enum_name: str) -> str:
    """Where torchvision publishes a checkpoint (read from its weights enum, not fetched)."""
    import torchvision.models as tvm

    enum, _, member = enum_name.partition(".")
    return getattr(getattr(tvm, enum), member).url


def _stride_in_1x1(net: nn.Module) -> None:
    """MSRA caffe ResNets (detectron2 ``RESNETS.STRIDE_IN_1X1: True``) downsample in the
    first 1x1 conv of a stage, torchvision in the 3x3: move the stride."""
    for layer in (net.layer2, net.layer3, net.layer4):
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)


def _resnet_body(net: nn.Module, scratch: bool, pixels, wide: bool) -> Body:
    stages = [
        nn.Sequential(net.conv1, net.bn1, getattr(net, "relu", None) or net.act1, net.maxpool),
        net.layer1,
        net.layer2,
        net.layer3,
        net.layer4,
    ]
    levels = [256, 512, 1024, 2048] if wide else [64, 128, 256, 512]
    return Body(stages, levels[1:], default_freeze_at=0 if scratch else 2,
                level_channels=levels, pixels=pixels)


class EvalAffineBatchNorm2d(FrozenBatchNorm2d):
    """BatchNorm2d fixed in eval mode (running statistics never updated) whose weight and
    bias are trainable parameters: ``y = (x − mean) / sqrt(var + eps) · weight + bias``."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__(num_features, eps=eps)
        weight, bias = self.weight, self.bias
        del self.weight, self.bias  # buffers in FrozenBatchNorm2d
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())


def eval_affine_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d / FrozenBatchNorm2d by :class:`EvalAffineBatchNorm2d`
    holding the same statistics and affine values."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d | FrozenBatchNorm2d) and not isinstance(
                child, EvalAffineBatchNorm2d):
            bn = EvalAffineBatchNorm2d(child.weight.shape[0], eps=child.eps)
            with torch.no_grad():
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, key).copy_(getattr(child, key))
            setattr(module, name, bn)
        else:
            eval_affine_batchnorm(child)
    return module


def _torchvision_resnet(name: str, weights: str, strict: bool = True,
                        drop_path: float = 0.0, norm: str = "frozen") -> Body:
    import torchvision.models as tvm

    ctor, enum = TORCHVISION[name]
    no_stochastic_depth(name, drop_path)
    scratch = weights == "none"
    if scratch and norm != "frozen":
        raise ConfigError(f"backbone.norm={norm!r}: {name} from scratch has GroupNorm, "
                          "no BatchNorm")
    if weights == "imagenet":
        raise imagenet_is_not_packaged(name, _published(enum))
    src = None if scratch else resolve_source(weights, name)
    net = getattr(tvm, ctor)(weights=None,
                             norm_layer=(lambda c: nn.GroupNorm(32, c)) if scratch else None)
    report = None
    if src is not None:
        if src.option("stride_in_1x1"):
            _stride_in_1x1(net)
        report = load_source(net, src, "torchvision", ("fc.",), strict)
    body = _resnet_body(net, scratch, src.pixels if src else IMAGENET_RGB, wide=name != "resnet18")
    body.weights_report = report
    if scratch:
        return body
    return eval_affine_batchnorm(body) if norm == "eval_affine" else freeze_batchnorm(body)


for _name in TORCHVISION:
    BACKBONES.register(_name)(lambda w, _n=_name, **kw: _torchvision_resnet(_n, w, **kw))
    NORM_OPTION.add(_name)


@BACKBONES.register("seresnet50")
def seresnet50(weights: str, strict: bool = True, drop_path: float = 0.0) -> Body:
    """timm SE-ResNet-50 (``seresnet50_ra_224``); same freeze rule as the ResNets."""
    import timm
    from timm.layers import freeze_batch_norm_2d

    if weights == "imagenet":
        raise imagenet_is_not_packaged("seresnet50", "the timm release (weights list)")
    src = None if weights == "none" else resolve_source(weights, "seresnet50")
    net = timm.create_model("seresnet50", pretrained=False, drop_path_rate=drop_path)
    report = None if src is None else load_source(net, src, "timm", ("fc.",), strict)
    net = freeze_batch_norm_2d(net)
    body = _resnet_body(net, False, src.pixels if src else IMAGENET_RGB, wide=True)
    body.weights_report = report
    return body
