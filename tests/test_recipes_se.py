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


def test_se_blocks_on_convnext_take_the_studys_convnext_initialisation():
    """mind_back's ConvNeXt applies ``_init_weights`` to the whole network, its SE modules
    included (VisionLearningGroup/mind_back@5e6694f src/modeling/backbone/convnext.py:236,
    244, 248-251): truncated normal with std 0.02, zero bias. After ResNet-like stages the
    blocks keep senet.py's Kaiming draw (non-zero default biases)."""
    from benchmark.recipes.se_adapters import study_init

    torch.manual_seed(0)
    convnext = build_body("convnext_tiny", "none", None)
    lite = build_body("efficientnet_lite0", "none", None)
    assert (study_init(convnext), study_init(lite)) == ("trunc_normal", "kaiming")
    insert_se(convnext)
    insert_se(lite)
    weights = torch.cat([c.weight.detach().flatten() for b in convnext.se_adapters
                         for c in (b.fc1, b.fc2)])
    assert weights.abs().max() <= 2.0 and 0.018 < float(weights.std()) < 0.022
    assert all(not c.bias.any() for b in convnext.se_adapters for c in (b.fc1, b.fc2))
    assert all(c.bias.any() for b in lite.se_adapters for c in (b.fc1, b.fc2))
    fc1 = lite.se_adapters[3].fc1.weight.detach()  # Kaiming fan_out: std √(2 / out_channels)
    assert float(fc1.std()) > 5 * 0.02


def test_se_ft_with_rgn_weighting_is_the_studys_se_plus_rgn_recipe():
    """mind_back TRAIN.md "Train with RGN regularization": ``fbnet_senet`` from the SE-
    pretrained weights with ``TRAIN.REG.RGN True SOLVER.COEFF 0.1``. Here ``se_ft`` with
    ``weighting: rgn``: parent ``se_dp``, importance maps needed, the backbone's own tensors
    pulled back to the ``se_dp`` weights by clip(c·s, 0, 1/lr), the SE blocks not
    (tools/utils.py:86)."""
    spec = _spec(RecipeSpec.make("se_ft", weighting="rgn"))
    recipe = get_recipe(spec.recipe)
    assert recipe.needs_importance and recipe.pull is not None and recipe.pull.c == 0.1
    assert parent_of(spec).recipe == RecipeSpec.make("se_dp")
    assert not get_recipe(RecipeSpec.make("se_ft")).needs_importance  # plain SE-FT unchanged
    model = load_detector(spec, 3, None)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    own = recipe.rgn_parameters(model)
    maps = {n: torch.ones(p.shape[:2]) if p.dim() == 4 else torch.ones_like(p) for n, p in own}
    recipe.configure(model, start, {"rgn": maps})
    with torch.no_grad():
        for _, p in model.body_parameters():
            p.add_(0.5)
            p.grad = torch.zeros_like(p)
    recipe.after_backward(model, 0.01)
    se_ids = {id(p) for p in model.body.se_adapters.parameters()}
    for name, p in model.body_parameters():
        expected = 0.0 if id(p) in se_ids else 0.5 * 0.1
        assert torch.allclose(p.grad, torch.full_like(p, expected)), name
    assert len(own) == len(model.body_parameters()) - len(se_ids) > 0


@pytest.mark.parametrize(("params", "match"), [
    ({"c": 0.1}, "c=0.1 needs a weighting"),
    ({"weighting": "fisher"}, "recipe 'se_ft': weighting='fisher'"),
    ({"weighting": "rgn", "c": -1}, "c=-1: must be a number >= 0"),
])
def test_bad_se_ft_regulariser_parameters_are_named(params, match):
    with pytest.raises(ConfigError, match=match):
        get_recipe(RecipeSpec.make("se_ft", **params))
