"""ViT-B/16 (timm) with a simple feature pyramid in the style of ViTDet (Li et al.,
detectron2 ``modeling/backbone/vit.py`` ``SimpleFeaturePyramid``): the last block's
stride-16 map becomes strides 4 (two 2x deconvolutions), 8 (one), 16 (as is) and 32
(max-pool), each projected by a 1x1 and a 3x3 conv with LayerNorm to 256 channels. The
pyramid is new (random init); only the ViT trunk loads a checkpoint. Nothing frozen by
default (ViTDet fine-tunes everything)."""

from __future__ import annotations

import torch
from torch import nn

from benchmark.models.backbones._base import (
    BACKBONES,
    Body,
    imagenet_is_not_packaged,
    load_source,
    resolve_source,
)
from benchmark.models.checkpoints.catalogue import IMAGENET_RGB

HEAD = ("head.", "fc_norm.")
CHANNELS = 256


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Trunk(nn.Module):
    """The ViT up to its last block, as an (N, C, H/16, W/16) map."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.patch_embed(x)  # NHWC (dynamic_img_size)
        h, w = x.shape[1:3]
        x = n.norm_pre(n.patch_drop(n._pos_embed(x)))
        x = n.norm(n.blocks(x))[:, n.num_prefix_tokens:]
        return x.reshape(x.shape[0], h, w, -1).permute(0, 3, 1, 2)


def _project(c: int) -> list[nn.Module]:
    return [nn.Conv2d(c, CHANNELS, 1, bias=False), LayerNorm2d(CHANNELS),
            nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=False), LayerNorm2d(CHANNELS)]


class SimpleFeaturePyramid(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        half, quarter = dim // 2, dim // 4
        self.p2 = nn.Sequential(nn.ConvTranspose2d(dim, half, 2, 2), LayerNorm2d(half), nn.GELU(),
                                nn.ConvTranspose2d(half, quarter, 2, 2), *_project(quarter))
        self.p3 = nn.Sequential(nn.ConvTranspose2d(dim, half, 2, 2), *_project(half))
        self.p4 = nn.Sequential(*_project(dim))
        self.p5 = nn.Sequential(nn.MaxPool2d(2, 2), *_project(dim))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.p2(x), self.p3(x), self.p4(x), self.p5(x)]


class ViTBody(Body):
    def _levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        trunk, pyramid = self.stages
        return pyramid(trunk(x))


@BACKBONES.register("vit_base_patch16")
def vit_base_patch16(weights: str, strict: bool = True, drop_path: float = 0.0) -> Body:
    import timm

    if weights == "imagenet":
        raise imagenet_is_not_packaged("vit_base_patch16", "the timm / Google ViT release")
    src = None if weights == "none" else resolve_source(weights, "vit_base_patch16")
    net = timm.create_model("vit_base_patch16_224", pretrained=False, drop_path_rate=drop_path,
                            dynamic_img_size=True, dynamic_img_pad=True)
    report = None if src is None else load_source(net, src, "timm", HEAD, strict)
    net.reset_classifier(0)
    levels = [CHANNELS] * 4
    body = ViTBody([Trunk(net), SimpleFeaturePyramid(net.embed_dim)], levels[1:],
                   default_freeze_at=0, level_channels=levels,
                   pixels=src.pixels if src else IMAGENET_RGB)
    body.weights_report = report
    return body
