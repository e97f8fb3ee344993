"""Relevance-map regularisation (RobustViT): the loss, the rollout, grid validation and a
few training steps on a tiny ViT."""

from __future__ import annotations

import pytest
import torch

from benchmark.data.split import load_split
from benchmark.errors import ConfigError
from benchmark.grid import load_grid
from benchmark.models.backbones import BACKBONES
from benchmark.recipes import get_recipe
from benchmark.recipes.relevance import patch_relevance, relevance_loss, rollout
from benchmark.spec import RecipeSpec
from benchmark.store import TrainingDir
from benchmark.training import Trainer
from tests.test_recipes_distill import one_cell_grid


def test_relevance_loss_is_zero_when_the_map_is_the_mask():
    fg = torch.tensor([[[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]])
    assert relevance_loss(fg.clone(), fg).item() == 0.0


def test_relevance_loss_by_hand():
    rel = torch.tensor([[0.5, 1.0], [0.0, 0.25]])
    fg = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # background: rel·bg = [[0, 1], [0, 0]] → MSE 1/4; foreground: rel·fg − fg =
    # [[−0.5, 0], [0, −0.75]] → (0.25 + 0.5625) / 4; 2 · 0.25 + 0.3 · 0.203125
    assert relevance_loss(rel, fg).item() == pytest.approx(0.5609375)


def test_rollout_applies_rules_5_and_6_block_by_block():
    a1 = torch.tensor([[[[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.1, 0.1, 0.8]]]])
    g1 = torch.tensor([[[[1.0, -1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 1.0, 1.0]]]])
    a2 = torch.cat([a1, a1.flip(-1)], dim=1)  # two heads: averaged
    g2 = torch.ones_like(a2)
    r = rollout([a1, a2], [g1, g2])
    c1 = torch.tensor([[0.5, 0, 0], [0.4, 0.8, 0], [0, 0.1, 0.8]])  # clamp(g1 · a1, 0)
    c2 = (a2[0, 0] + a2[0, 1]) / 2  # gradient 1: the heads' mean attention
    eye = torch.eye(3)
    assert torch.allclose(r[0], (eye + c2) @ (eye + c1))  # R_b = (I + C_b) R_{b−1}
    rel = patch_relevance(r, prefix=1, grid=(1, 2))  # mean of rows 1-2, columns 1-2
    col = r[0, 1:, 1:].mean(0)
    expected = (col - col.min()) / (col.max() - col.min())
    assert rel[0, 0].tolist() == pytest.approx(expected.tolist())


def test_relevance_on_a_cnn_is_rejected_at_grid_validation(tmp_path):
    path = one_cell_grid(tmp_path, {"name": "relevance"}, {"name": "resnet18", "weights": "none"})
    with pytest.raises(ConfigError) as err:
        load_grid(str(path), resolve_data=False)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "backbone.name='resnet18'" in message and "vit_base_patch16" in message
    vit = one_cell_grid(tmp_path, {"name": "relevance"},
                        {"name": "vit_base_patch16", "weights": "none"})
    assert load_grid(str(vit), resolve_data=False).runs[0].recipe.name == "relevance"


@pytest.mark.parametrize(("params", "match"), [
    ({"lambda_acc": 0}, "lambda_acc=0: must be a number > 0"),
    ({"lambda_bg": -2}, "lambda_bg=-2: must be a number >= 0"),
    ({"lr": -0.5}, "lr=-0.5: must be a number > 0"),
])
def test_bad_relevance_parameters_are_named(params, match):
    with pytest.raises(ConfigError, match=match):
        get_recipe(RecipeSpec.make("relevance", **params))


def _tiny_vit(weights: str, strict: bool = True, drop_path: float = 0.0):
    """A two-block ViT with the suite's ViT body around it (no weight file)."""
    from timm.models.vision_transformer import VisionTransformer

    from benchmark.models.backbones.vit import SimpleFeaturePyramid, Trunk, ViTBody

    net = VisionTransformer(img_size=64, patch_size=16, embed_dim=32, depth=2, num_heads=2,
                            num_classes=0, dynamic_img_size=True, dynamic_img_pad=True)
    return ViTBody([Trunk(net), SimpleFeaturePyramid(32)], [256] * 3, default_freeze_at=0,
                   level_channels=[256] * 4)


def test_relevance_trains_a_tiny_vit_with_adamw(bench_env, tmp_path):
    with BACKBONES.registered("vit_test_tiny", _tiny_vit):
        path = one_cell_grid(tmp_path, {"name": "relevance", "lr": 1e-4},
                             {"name": "vit_test_tiny", "weights": "none"}, iterations=3,
                             checkpoint_every=100, train_sizes=[160])
        spec = load_grid(str(path)).runs[0]
        trainer = Trainer(spec, load_split(spec.train_split), TrainingDir("t", tmp_path / "o"))
        model = trainer.build(None)
        recipe = trainer.recipe
        recipe.configure(model, {}, None)
        opt = recipe.optimizer(recipe.param_groups(model, 1e-4), 1e-4, spec.schedule)
        assert isinstance(opt, torch.optim.AdamW) and opt.defaults["weight_decay"] == 1e-4
        fused = [m.fused_attn for m in recipe.attn_modules]
        images, targets = trainer.batch(0)
        model.losses(images, targets)
        loss = recipe.extra_losses(model, images, targets)["loss_relevance"]
        assert 0 < loss.item() < 4 * (2 + 0.3)  # rel, fg ∈ [0, 1]
        loss.backward()
        qkv = model.body.stages[0].net.blocks[0].attn.qkv.weight
        assert qkv.grad is not None and qkv.grad.abs().sum() > 0
        assert [m.fused_attn for m in recipe.attn_modules] == fused  # restored
        trainer.run(progress=False)
    assert [e["iter"] for e in trainer.log] == [0, 2]
    assert all(e["loss_relevance"] > 0 for e in trainer.log)
