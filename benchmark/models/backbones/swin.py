"""Swin-T/S/B (timm's SwinTransformer; the Microsoft release converts onto it with timm's
own filter). Feature maps of ``layers[0..3]`` at strides 4, 8, 16, 32 (timm's stages
exchange NHWC tensors; the body returns NCHW). Window attention pads to the window size and
builds its mask per input size (``strict_img_size=False``), so any input divisible by 32
works. Nothing frozen by default: the transfer study's mmdetection Swin config fine-tunes
the whole backbone (``frozen_stages=-1``); its fixed-features config gives the backbone lr 0
but for the relative-position bias tables (``benchmark.recipes.fixed_features``).

``drop_path`` is timm's ``drop_path_rate``: block i of the 12 drops with rate·i/11 (linear in
depth), as mmdetection's ``SwinTransformer`` (``torch.linspace(0, drop_path_rate, 12)``); the
study fine-tunes with 0.2 (runopti/RobustDownstreamTransfer@a67aae8 ``mmdetection/configs/
swin/mask_rcnn_swin-t-p4-w7_fpn_ms-crop-2x_coco.py:23``). A body has no BatchNorm: ``norm``
other than "frozen" is refused (``benchmark.models.backbones._base.build_body``).
"""

from __future__ import annotations

from benchmark.models.backbones._base import (
    BACKBONES,
    Body,
    imagenet_is_not_packaged,
    load_source,
    resolve_source,
)
from benchmark.models.checkpoints.catalogue import IMAGENET_RGB

HEAD = ("head.", "norm.")
TIMM = {"swin_tiny": "swin_tiny_patch4_window7_224", "swin_small": "swin_small_patch4_window7_224",
        "swin_base": "swin_base_patch4_window7_224"}


def _swin(arch: str, weights: str, strict: bool = True, drop_path: float = 0.0) -> Body:
    import timm

    if weights == "imagenet":
        raise imagenet_is_not_packaged(arch, "https://github.com/SwinTransformer/storage")
    src = None if weights == "none" else resolve_source(weights, arch)
    net = timm.create_model(TIMM[arch], pretrained=False, drop_path_rate=drop_path,
                            strict_img_size=False)
    report = None if src is None else load_source(net, src, "timm", HEAD, strict)
    stages = [net.patch_embed, *net.layers]
    dims = [int(net.embed_dim * 2 ** i) for i in range(4)]
    body = Body(stages, dims[1:], default_freeze_at=0, level_channels=dims,
                pixels=src.pixels if src else IMAGENET_RGB, nhwc=True)
    body.weights_report = report
    return body


for _arch in TIMM:
    BACKBONES.register(_arch)(lambda w, _a=_arch, **kw: _swin(_a, w, **kw))
