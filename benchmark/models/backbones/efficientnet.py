"""EfficientNet-B0/B2 (timm; ``efficientnet_*`` with PyTorch padding, ``tf_efficientnet_*``
with TF "same" padding and BatchNorm eps 1e-3, the Noisy Student checkpoints' architecture).

Stages follow timm's ``features_only`` split (``EfficientNetFeatures``): stem (``conv_stem``
+ ``bn1``), ``blocks[0]`` (stride 2), ``blocks[1]`` (4), ``blocks[2]`` (8), ``blocks[3:5]``
(16), ``blocks[5:7]`` (32); ``conv_head`` / ``classifier`` are not part of the body. Freeze
rule of mind_back (VisionLearningGroup/mind_back@5e6694f) ``src/modeling/backbone/fpn.py``
lines 618–623 (``build_resnet_fpn_backbone_efficient``): ``conv_stem`` +
``blocks[0]`` frozen (FREEZE_AT=2 here), every BatchNorm frozen (``FrozenBatchNormAct2d``;
here timm's ``freeze_batch_norm_2d``, which keeps the activation of ``BatchNormAct2d``).
Drop-path 0 (the study builds timm's default, 0). Unlike the study (line 619), no train-mode
forward runs before BatchNorm is frozen, so the checkpoint's statistics stay. Every block's
squeeze-and-excitation convs (``<stage>.<block>.se.conv_reduce`` / ``conv_expand``, timm's
names) train and are anchored by the regularisers, but are left out of the reported RGN, as
the study's ``tools/compute_rgn.py:57`` leaves out every ``se.`` tensor (``benchmark.rgn``).
"""

from __future__ import annotations

from torch import nn

from benchmark.models.backbones._base import (
    BACKBONES,
    Body,
    imagenet_is_not_packaged,
    load_source,
    resolve_source,
)
from benchmark.models.checkpoints.catalogue import IMAGENET_RGB

HEAD = ("conv_head.", "bn2.", "classifier.")


def _efficientnet(arch: str, weights: str, strict: bool = True, drop_path: float = 0.0) -> Body:
    import timm
    from timm.layers import freeze_batch_norm_2d

    if weights == "imagenet":
        raise imagenet_is_not_packaged(arch, "the timm release (weights catalogue)")
    src = None if weights == "none" else resolve_source(weights, arch)
    net = timm.create_model(arch, pretrained=False, drop_path_rate=drop_path)
    report = None if src is None else load_source(net, src, "timm", HEAD, strict)
    net = freeze_batch_norm_2d(net)
    b = net.blocks
    stages = [nn.Sequential(net.conv_stem, net.bn1), b[0], b[1], b[2],
              nn.Sequential(b[3], b[4]), nn.Sequential(b[5], b[6])]
    dims = [b[i][-1].bn3.num_features for i in (1, 2, 4, 6)]
    body = Body(stages, dims[1:], default_freeze_at=2, level_channels=dims,
                pixels=src.pixels if src else IMAGENET_RGB)
    body.weights_report = report
    return body


for _arch in ("efficientnet_b0", "efficientnet_b2", "tf_efficientnet_b0", "tf_efficientnet_b2"):
    BACKBONES.register(_arch)(lambda w, _a=_arch, **kw: _efficientnet(_a, w, **kw))
