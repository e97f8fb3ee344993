"""SE adapters: the study's initialisation (the body's output gated per channel, not
unchanged), DP + SE trains the SE blocks through an attached body, stage checks."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from benchmark.errors import ConfigError
from benchmark.grid import load_grid
from benchmark.models.backbones import build_body
from benchmark.recipes import get_recipe, parent_of
from benchmark.recipes.se_adapters import REDUCTIONS, insert_se
from benchmark.spec import BackboneSpec, RecipeSpec
from benchmark.training.checkpoint import load_detector
from tests.conftest import TINY_GRID


def test_se_blocks_gate_each_level_as_the_study_initialises_them():
    torch.manual_seed(0)
    plain = build_body("efficientnet_lite0", "none", None)
    adapted = build_body("efficientnet_lite0", "none", None)
    adapted.load_state_dict(plain.state_dict())
    insert_se(adapted)
    se = adapted.se_adapters
    assert [b.fc1.out_channels for b in se] == [24 // 4, 40 // 8, 112 // 16, 320 // 32]
    assert REDUCTIONS == (4, 8, 16, 32)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        got = list(adapted.levels(x).values())
        # by hand: each stage's output times σ(W2·relu(W1·mean + b1) + b2), fed onward
        h, expected = x, []
        for i, stage in enumerate(plain.stages):
            h = stage(h)
            if i >= 1:
                b = se[i - 1]
                m = h.mean((2, 3))
                z = torch.relu(m @ b.fc1.weight[:, :, 0, 0].T + b.fc1.bias)
                gate = torch.sigmoid(z @ b.fc2.weight[:, :, 0, 0].T + b.fc2.bias)
                assert ((gate > 0) & (gate < 1)).all()
                h = h * gate[:, :, None, None]
                expected.append(h)
        unchanged = list(plain.levels(x).values())
    for g, e, u in zip(got, expected, unchanged, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(g, u)  # not the identity at initialisation (as the study)


def _spec(recipe: RecipeSpec, backbone: str = "efficientnet_lite0", weights: str = "imagenet"):
    base = load_grid(str(TINY_GRID), resolve_data=False).runs[0]
    return replace(base, recipe=recipe, backbone=BackboneSpec(name=backbone, weights=weights))


def test_se_dp_trains_se_and_decoder_through_an_attached_body():
    spec = _spec(RecipeSpec.make("se_dp"))
    model = load_detector(spec, 3, None)
    get_recipe(spec.recipe).configure(model, {}, None)
    se_ids = {id(p) for p in model.body.se_adapters.parameters()}
    assert {id(p) for _, p in model.body_parameters()} == se_ids
    images = [torch.rand(3, 96, 96)]
    targets = [{"boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0]]), "labels": torch.tensor([1])}]
    sum(model.losses(images, targets).values()).backward()
    first = model.body.se_adapters[0].fc1.weight.grad  # the stride-4 block: deepest gradient
    assert first is not None and first.abs().sum() > 0
    assert all(p.grad is None for p in model.body.parameters() if id(p) not in se_ids)


def test_se_ft_starts_from_se_dp_with_matching_state():
    spec = _spec(RecipeSpec.make("se_ft", dp_lr=0.02))
    parent = parent_of(spec)
    assert parent.recipe == RecipeSpec.make("se_dp", lr=0.02)
    a, b = load_detector(spec, 3, None).state_dict(), load_detector(parent, 3, None).state_dict()
    assert a.keys() == b.keys() and any(".se_adapters.3.fc2." in k for k in a)
    # RGN over the backbone's own tensors only (mind_back tools/compute_rgn.py:57)
    model = load_detector(spec, 3, None)
    measured = dict(get_recipe(spec.recipe).rgn_parameters(model))
    assert measured and not any(n.startswith("se_adapters.") for n in measured)
    own = {n for n, _ in model.body_parameters() if not n.startswith("se_adapters.")}
    assert set(measured) == own and len(own) < len(model.body_parameters())


def test_se_on_a_backbone_without_stages_is_rejected():
    get_recipe(RecipeSpec.make("se_dp")).check(_spec(RecipeSpec.make("se_dp")))
    spec = _spec(RecipeSpec.make("se_ft"), "vit_base_patch16", "none")
    with pytest.raises(ConfigError, match="backbone.name='vit_base_patch16'"):
        get_recipe(spec.recipe).check(spec)
