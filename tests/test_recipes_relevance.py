"""Relevance-map regularisation (RobustViT): the loss, the rollout, grid validation and a
few training steps on a tiny ViT."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

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


def _decaying_optimizer(iterations: int, **params):
    from benchmark.spec import Schedule

    recipe = get_recipe(RecipeSpec.make("relevance", **params))
    w = torch.nn.Parameter(torch.zeros(2))
    groups = [{"params": [w], "lr": 3e-6, "base_lr": 3e-6, "name": "backbone"}]
    opt = recipe.optimizer(groups, 3e-6, Schedule(iterations=iterations, batch_size=1, lr=0.1))
    return recipe, opt


def _step(recipe, opt, cell_factor: float = 0.5) -> float:
    """One step as the training loop makes it: the cell's policy first, then the recipe."""
    for g in opt.param_groups:
        g["lr"] = g["base_lr"] * cell_factor
    recipe.after_backward(None, 3e-6 * cell_factor)
    return opt.param_groups[0]["lr"]


def test_relevance_lr_decays_as_robustvit():
    """hila-chefer/RobustViT@df06c98 imagenet_finetune.py:542-546: lr · 0.85^⌊epoch / 2⌋ over
    50 epochs (:55), nothing else. A 50-step stage is cut into 25 spans of 2 steps: step s
    trains at lr · 0.85^⌊s / 2⌋, whatever the cell's policy says."""
    recipe, opt = _decaying_optimizer(50)
    lrs = [_step(recipe, opt) for _ in range(50)]
    assert lrs == [3e-6 * 0.85 ** (s // 2) for s in range(50)]
    recipe, opt = _decaying_optimizer(1000)  # 25 spans of 40 steps; the last is 0.85^24
    lrs = [_step(recipe, opt) for _ in range(1000)]
    assert lrs[39] == 3e-6 and lrs[40] == 3e-6 * 0.85 and lrs[-1] == 3e-6 * 0.85 ** 24
    recipe, opt = _decaying_optimizer(10, lr_decay=1.0)  # no decay: constant lr
    assert {_step(recipe, opt) for _ in range(10)} == {3e-6}


def test_relevance_lr_decay_resumes_from_the_optimizer_state():
    recipe, opt = _decaying_optimizer(50)
    for _ in range(7):
        _step(recipe, opt)
    state = opt.state_dict()
    resumed, opt2 = _decaying_optimizer(50)
    opt2.load_state_dict(state)
    assert [_step(resumed, opt2) for _ in range(5)] == [3e-6 * 0.85 ** (s // 2)
                                                        for s in range(7, 12)]


@pytest.mark.parametrize(("params", "match"), [
    ({"lr_decay": 0}, "lr_decay=0: must be a number > 0 and <= 1"),
    ({"lr_decay_periods": 2.5}, "lr_decay_periods=2.5: must be an int >= 1"),
    ({"lr_decay_periods": 0}, "lr_decay_periods=0: must be a number >= 1"),
])
def test_bad_relevance_schedule_parameters_are_named(params, match):
    with pytest.raises(ConfigError, match=match):
        get_recipe(RecipeSpec.make("relevance", **params))


def test_the_robustvit_grid_runs_relevance_against_ft_on_both_vits(capsys, tmp_path,
                                                                   monkeypatch):
    """benchmark/grids/robustvit_pascal.yaml: FT and relevance on RobustViT's ViT-B and
    DeiT-B checkpoints (the README's learning rates); without the files the dry run lists
    both missing checkpoints, where each is published and the command that fetches it."""
    from benchmark.run import main as run_main

    grid = load_grid("robustvit_pascal", resolve_data=False, check_weights=False)
    cells = {(r.backbone.weights, r.recipe.name, r.recipe.get("lr")) for r in grid.runs}
    assert cells == {("vit_base_patch16_224_in21k_ft_in1k", "ft", None),
                     ("vit_base_patch16_224_in21k_ft_in1k", "relevance", 3e-6),
                     ("deit_base_patch16_224", "ft", None),
                     ("deit_base_patch16_224", "relevance", 8e-7)}
    assert {r.family for r in grid.runs} == {"pascal"} and len(grid.runs) == 4 * 3
    assert {r.backbone.name for r in grid.runs} == {"vit_base_patch16"}
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "weights"))
    assert run_main(["--grid", "robustvit_pascal", "--dry-run"]) == 1
    out = capsys.readouterr().out
    missing = [ln for ln in out.splitlines() if ln.strip().startswith("missing    weights")]
    assert len(missing) == 2 and all(str(tmp_path / "weights") in ln for ln in missing)
    assert {"vit_base_patch16_224_in21k_ft_in1k", "deit_base_patch16_224"} == {
        ln.split()[2] for ln in missing}
    assert out.count("https://") >= 2 and "benchmark.weights fetch --grid robustvit_pascal" in out


# ---- the recipe's loss on a stub detector, against a hand computation -------------------------
class _Attention(nn.Module):
    """The slice of timm's ``Attention`` the recipe touches: ``fused_attn`` and the
    ``attn_drop`` module whose output is the attention map (hooked by the recipe)."""

    def __init__(self) -> None:
        super().__init__()
        self.fused_attn = True
        self.attn_drop = nn.Identity()


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = _Attention()


class _Net(nn.Module):
    """A 2-block "ViT" of 16-px patches, no prefix token: what ``_trunk_net`` returns."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([_Block(), _Block()])
        self.patch_embed = SimpleNamespace(patch_size=(16, 16))
        self.num_prefix_tokens = 0


class _StubDetector(nn.Module):
    """Two 16 × 48 images (3 patches each, one head, two blocks). The attention maps are
    parameters A (every entry 1/3); the detection loss is L = Σ W ⊙ A, so the explained score
    −L has the gradient −W with respect to each map."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.body = nn.Module()
        self.body.stages = nn.ModuleList([nn.Identity()])
        self.body.channel_order = "RGB"
        self.body.net = _Net()
        self.att = nn.Parameter(torch.full((2, 2, 1, 3, 3), 1 / 3))  # (block, N, heads, T, T)
        self.w = w  # (block, N, heads, T, T)

    def losses(self, images, targets):
        self.body.stages[0](torch.stack(images))  # the tensor the body sees (captured)
        loss = torch.zeros(())
        for b, blk in enumerate(self.body.net.blocks):
            a = blk.attn.attn_drop(self.att[b] * 1.0)
            loss = loss + (self.w[b] * a).sum()
        return {"loss_stub": loss}


def _stub_case(monkeypatch):
    """Block 1 rewards (W < 0) attention to the box's patch: image 0's rows of −W are
    [−3, 3, 1.5] (box on the middle patch), image 1's [3, −3, 1.5] (box on the left patch).
    Block 2's W is 0: no relevance from it."""
    import benchmark.recipes.relevance as relevance

    monkeypatch.setattr(relevance, "_trunk_net", lambda body: body.net)
    w = torch.zeros(2, 2, 1, 3, 3)
    w[0, 0, 0] = -torch.tensor([-3.0, 3.0, 1.5])  # every row the same
    w[0, 1, 0] = -torch.tensor([3.0, -3.0, 1.5])
    model = _StubDetector(w)
    images = [torch.zeros(3, 16, 48), torch.zeros(3, 16, 48)]
    targets = [{"boxes": torch.tensor([[16.0, 0.0, 32.0, 16.0]]), "labels": torch.tensor([0])},
               {"boxes": torch.tensor([[0.0, 0.0, 16.0, 16.0]]), "labels": torch.tensor([0])}]
    recipe = get_recipe(RecipeSpec.make("relevance"))
    recipe.configure(model, {}, None)
    return recipe, model, images, targets


def test_relevance_loss_of_a_stub_detector_by_hand(monkeypatch):
    """The relevance of the score −L (rv explains the true class's logit, what the model is
    rewarded for; here minus the detection loss), by rules 5 and 6 and the loss of
    rv imagenet_finetune.py:328-335, 349, worked by hand:

    image 0, block 1: C = clamp(−W ⊙ A, 0) has every row [0, 1, 0.5]; R = I + C (block 2
    adds nothing) has column sums [1, 4, 2.5], means over the rows [1/3, 4/3, 5/6], min-max
    normalised [0, 1, 0.5]. The box covers patch 1: fg = [0, 1, 0], so the background error
    is 0.5 at patch 2, the foreground error 0.
    image 1: rows of C [1, 0, 0.5]: relevance [1, 0, 0.5]; the box covers patch 0: again a
    background error 0.5 at patch 2, no foreground error.
    MSE over the 6 patches: bg 2·0.25/6 = 1/12, fg 0; seg = λ_bg·1/12 = 1/6; the term is
    λ_seg/λ_acc · seg = 4/6.

    With the score's sign flipped (explaining the loss), image 0's rows of C are [1, 0, 0] →
    relevance [1, 0, 0], image 1's [0, 1, 0]: every patch's error flips, bg 2/6, fg 2/6,
    4·(2/3 + 0.1) = 3.07. Without the 4, 1/6."""
    recipe, model, images, targets = _stub_case(monkeypatch)
    loss = recipe.extra_losses(model, images, targets)["loss_relevance"]
    assert loss.item() == pytest.approx(4 / 6, rel=1e-6)
    assert [m.fused_attn for m in recipe.attn_modules] == [True, True]  # restored


def test_relevance_gradient_pulls_attention_onto_the_box(monkeypatch):
    """The term trains through the attention maps (rv: gradients taken without a graph,
    explainer.py:49, so the relevance map is differentiable in A with ∇A fixed). By hand, for
    image 0: the loss is 4·2·(rel₂·bg₂)²/6 with rel₂ = (m₂ − m₀)/(m₁ − m₀), m_j the
    column means of R; ∂loss/∂rel₂ = 4·2·2·0.5/6 = 4/3; ∂rel₂/∂m₂ = 1, ∂rel₂/∂m₁ = −0.5;
    ∂m_j/∂A[i, j] = (−W)[i, j]/3 where clamp(−W ⊙ A) > 0: ∂m₁/∂A = 1, ∂m₂/∂A = 0.5, and 0 at
    the clamped patch 0. So every row of ∂loss/∂A is [0, −2/3, 2/3]: more attention to the
    box's patch lowers the loss, to the background patch raises it. Image 1 (box on patch 0,
    min at patch 1): [−2/3, 0, 2/3]. Block 2 (no relevance): 0."""
    recipe, model, images, targets = _stub_case(monkeypatch)
    recipe.extra_losses(model, images, targets)["loss_relevance"].backward()
    grad = model.att.grad
    expected0 = torch.tensor([0.0, -2 / 3, 2 / 3]).expand(3, 3)
    expected1 = torch.tensor([-2 / 3, 0.0, 2 / 3]).expand(3, 3)
    torch.testing.assert_close(grad[0, 0, 0], expected0)
    torch.testing.assert_close(grad[0, 1, 0], expected1)
    assert torch.equal(grad[1], torch.zeros_like(grad[1]))
