"""ResNets: torchvision's ResNet-18/50/101 and ResNeXt-50 32x4d (the layout of the torchvision,
FB semi-(weakly) supervised, robust and converted MSRA checkpoints) and timm's SE-ResNet-50.

Freeze rule (RESEARCH.md §10): mind_back (VisionLearningGroup/mind_back@5e6694f)
``src/modeling/backbone/fpn.py`` lines 713–718 (``build_resnet_fpn_backbone_resnet``:
``conv1`` + ``layer1`` frozen, then ``FrozenBatchNorm2d.convert_frozen_batchnorm``) for the
torchvision-layout and timm files, and detectron2's ``build_resnet_backbone`` (defaults
``FREEZE_AT=2``, ``NORM="FrozenBN"``, ``STRIDE_IN_1X1=True``) for the MSRA caffe ones (line
578): stem + res2 frozen, every BatchNorm frozen with the checkpoint's statistics (no
train-mode forward before freezing, unlike the study's line 714). From scratch ("none"):
GroupNorm(32) and nothing frozen — batch statistics of a few small images cannot train a
random network.
"""

from __future__ import annotations

from torch import nn

from benchmark.models.backbones._base import (
    BACKBONES,
    Body,
    freeze_batchnorm,
    imagenet_is_not_packaged,
    load_source,
    no_stochastic_depth,
    resolve_source,
)
from benchmark.models.weights.catalogue import IMAGENET_RGB

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


def _torchvision_resnet(name: str, weights: str, strict: bool = True,
                        drop_path: float = 0.0) -> Body:
    import torchvision.models as tvm

    ctor, enum = TORCHVISION[name]
    no_stochastic_depth(name, drop_path)
    scratch = weights == "none"
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
    return body if scratch else freeze_batchnorm(body)


for _name in TORCHVISION:
    BACKBONES.register(_name)(lambda w, _n=_name, **kw: _torchvision_resnet(_n, w, **kw))


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
