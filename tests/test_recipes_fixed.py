"""Fixed features as the study runs it: no backbone tensor trains (``lr_mult=0.0`` and
``decay_mult=0.0`` on every ``backbone`` key, runopti/RobustDownstreamTransfer@a67aae8
mmdetection/configs/mask_rcnn/mask_rcnn_r50_fpn_2x_lr0.04_coco_fixedfeature.py:8-14), norms
included; in the Swin-T config only the relative-position bias tables train (mmcv's
longest-key rule: ``relative_position_bias_table`` before ``backbone``, while ``norm`` is
shorter than ``backbone``, so the norms stay at lr 0), at the decoder's lr without decay.
``norm_lr_mult`` > 0 (not the study's) trains the norms' affine parameters."""

from __future__ import annotations

from dataclasses import replace

import torch

from benchmark.grid import load_grid
from benchmark.recipes import get_recipe
from benchmark.spec import BackboneSpec, RecipeSpec, RunSpec
from benchmark.training.checkpoint import load_detector
from tests.conftest import TINY_GRID


def _spec(backbone: BackboneSpec, **params: object) -> RunSpec:
    base = load_grid(str(TINY_GRID), resolve_data=False).runs[0]
    return replace(base, recipe=RecipeSpec.make("fixed_features", **params), backbone=backbone)


def _steps(spec: RunSpec, n: int = 3) -> tuple[torch.nn.Module, dict, list[dict]]:
    """The detector after ``n`` SGD steps, its body's state before them, and the groups."""
    torch.manual_seed(0)
    model = load_detector(spec, 3, None)
    recipe = get_recipe(spec.recipe)
    body0 = {k: v.clone() for k, v in model.body.state_dict().items()}
    recipe.configure(model, {}, None)
    groups = recipe.param_groups(model, 0.01)
    opt = torch.optim.SGD(groups, lr=0.01, momentum=0.9, weight_decay=1e-4)
    images = [torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 44.0]]), "labels": torch.tensor([1])}] * 2
    for _ in range(n):
        opt.zero_grad()
        sum(model.losses(images, targets).values()).backward()
        opt.step()
    return model, body0, groups


def test_by_default_no_backbone_tensor_trains():
    """ResNet-18 from scratch: GroupNorm, nothing frozen by the body — 60 parameter tensors
    (stem conv + GN 3; layer1 2 × (conv, GN, conv, GN) = 12; layers 2-4 each 12 + a
    downsample conv + GN = 15), all trainable before the recipe, none after it."""
    spec = _spec(BackboneSpec(name="resnet18", weights="none"))
    torch.manual_seed(0)
    model = load_detector(spec, 3, None)
    assert len(model.body_parameters()) == 3 + 12 + 3 * 15
    get_recipe(spec.recipe).configure(model, {}, None)
    assert model.body_parameters() == []
    decoder = model.decoder_parameters()
    groups = get_recipe(spec.recipe).param_groups(model, 0.01)
    assert [g["name"] for g in groups] == ["decoder"] and len(groups[0]["params"]) == len(decoder)
    model, body0, _ = _steps(spec, n=2)
    after = model.body.state_dict()
    assert all(torch.equal(after[k], v) for k, v in body0.items())


def test_norm_lr_mult_trains_the_groupnorms_of_a_scratch_resnet():
    """The 40 GroupNorm affine tensors of the same body (stem 2, layer1 8, layers 2-4 10
    each: 4 per block + 2 of the downsample) train; the 20 convolutions do not."""
    spec = _spec(BackboneSpec(name="resnet18", weights="none"), norm_lr_mult=1.0)
    torch.manual_seed(0)
    model = load_detector(spec, 3, None)
    get_recipe(spec.recipe).configure(model, {}, None)
    names = [n for n, _ in model.body_parameters()]
    assert len(names) == 2 + 8 + 3 * 10
    assert all(n.endswith(("weight", "bias")) and "conv" not in n for n in names)


def test_train_keys_keep_swins_relative_position_bias_tables_training():
    """Swin-T has 2 + 2 + 6 + 2 = 12 blocks, one relative-position bias table each: those
    train (at the decoder's lr, no decay); every other body tensor stays bit-identical."""
    spec = _spec(BackboneSpec(name="swin_tiny", weights="none"),
                 train_keys="relative_position_bias_table")
    model, body0, groups = _steps(spec)
    keyed = [n for n, _ in model.body_parameters()]
    assert len(keyed) == 12 and all(n.endswith("relative_position_bias_table") for n in keyed)
    group = next(g for g in groups if g["name"] == "backbone_keys")
    assert group["lr"] == 0.01 and group["weight_decay"] == 0.0 and len(group["params"]) == 12
    after = model.body.state_dict()
    assert all(not torch.equal(after[n], body0[n]) for n in keyed)
    for k, v in body0.items():
        if k not in keyed:
            assert torch.equal(after[k], v), k
