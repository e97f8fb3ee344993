"""Fixed features: after training steps every backbone tensor but the norms' affine
parameters is bit-identical (Swin-T: LayerNorms with affine parameters)."""

from __future__ import annotations

from dataclasses import replace

import torch

from benchmark.grid import load_grid
from benchmark.recipes import get_recipe
from benchmark.recipes.fixed_features import norm_affine_ids
from benchmark.spec import BackboneSpec, RecipeSpec
from benchmark.training.checkpoint import load_detector
from tests.conftest import TINY_GRID


def test_only_norm_affine_parameters_of_the_backbone_move():
    base = load_grid(str(TINY_GRID), resolve_data=False).runs[0]
    spec = replace(base, recipe=RecipeSpec.make("fixed_features"),
                   backbone=BackboneSpec(name="swin_tiny", weights="none"))
    torch.manual_seed(0)
    model = load_detector(spec, 3, None)
    recipe = get_recipe(spec.recipe)
    body0 = {k: v.clone() for k, v in model.body.state_dict().items()}
    recipe.configure(model, {}, None)
    groups = recipe.param_groups(model, 0.01)
    assert [g["name"] for g in groups] == ["decoder", "backbone_norms"]
    opt = torch.optim.SGD(groups, lr=0.01, momentum=0.9, weight_decay=1e-4)
    images = [torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 44.0]]), "labels": torch.tensor([1])}] * 2
    for _ in range(3):
        opt.zero_grad()
        sum(model.losses(images, targets).values()).backward()
        opt.step()
    norm_names = {n for n, p in model.body.named_parameters() if id(p) in norm_affine_ids(
        model.body)}
    after = model.body.state_dict()
    assert norm_names and all(n.endswith(("weight", "bias")) for n in norm_names)
    assert any(not torch.equal(after[n], body0[n]) for n in norm_names)  # the norms train
    for k, v in body0.items():
        if k not in norm_names:
            assert torch.equal(after[k], v), k
