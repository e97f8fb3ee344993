"""Recipe mechanics against hand-computed values."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from benchmark.errors import ConfigError
from benchmark.recipes import get_recipe
from benchmark.spec import RecipeSpec


class _Body:
    """The slice of the engine interface a recipe touches: named backbone parameters."""

    def __init__(self, **params: nn.Parameter) -> None:
        self.params = params

    def body_parameters(self):
        return list(self.params.items())

    def body_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k.removeprefix("body."): v for k, v in state.items() if k.startswith("body.")}


def _start(**tensors: torch.Tensor) -> dict[str, torch.Tensor]:
    """A full state dict at θ0: the body's tensors under the engine's body prefix."""
    return {"head.w": torch.zeros(1), **{f"body.{k}": v for k, v in tensors.items()}}


def test_reg_ft_distance_adds_unclipped_pull_to_start_weights():
    """mind_back's PLAIN_DIST scales by SOLVER.COEFF as it is (VisionLearningGroup/
    mind_back@5e6694f tools/utils.py:88-89); only the weighted forms clip at 1/lr (:97)."""
    w = nn.Parameter(torch.tensor([2.0, -1.0]))
    w.grad = torch.tensor([0.5, 0.5])
    model = _Body(w=w)
    recipe = get_recipe(RecipeSpec.make("reg_ft", weighting="distance", c=0.1))
    recipe.configure(model, _start(w=torch.tensor([1.0, 1.0])), None)
    recipe.after_backward(model, lr=0.01)
    # grad + (θ − θ0)·0.1 = [0.5 + 1·0.1, 0.5 + (−2)·0.1]
    assert w.grad.tolist() == pytest.approx([0.6, 0.3])
    w.grad = torch.tensor([0.5, 0.5])
    recipe.after_backward(model, lr=20.0)  # c·lr = 2 > 1: still 0.1 (no clip at 1/20)
    assert w.grad.tolist() == pytest.approx([0.6, 0.3])


def _mind_back_gradient_modifier(cfg, model, model_ref, scale_param_task, lr):
    """VisionLearningGroup/mind_back@5e6694f tools/utils.py:84-98, transcribed verbatim
    (the zip wrapped over two lines)."""
    for (name, p_tgt), (_, p_src) in zip(model.named_parameters(),  # noqa: B905 (verbatim)
                                         model_ref.named_parameters()):
        if 'bottom_up' in name and 'se_module' not in name:
            if p_tgt.grad is not None:
                if cfg.TRAIN.REG.PLAIN_DIST:
                    scaling = cfg.SOLVER.COEFF
                else:
                    value = scale_param_task[name]
                    scale_unclip = value
                    if not cfg.TRAIN.REG.EWC:
                        if len(p_src.shape) == 4:
                            h, w, _, _ = p_src.shape
                            scale_unclip = value.view(h, w, 1, 1)
                    scaling = torch.clip(cfg.SOLVER.COEFF * scale_unclip, min=0, max=1. / lr)
                p_tgt.grad += (p_tgt - p_src) * scaling


def _study_net(tensors: dict[str, torch.Tensor]) -> nn.Module:
    """mind_back's naming: the backbone's tensors under ``bottom_up``."""
    net = nn.Module()
    net.bottom_up = nn.Module()
    for k, v in tensors.items():
        net.bottom_up.register_parameter(k, nn.Parameter(v.clone()))
    return net


@pytest.mark.parametrize(("weighting", "c", "lr"), [
    ("distance", 0.1, 0.01), ("distance", 5.0, 0.5),  # c·lr > 1: PLAIN_DIST has no clip
    ("ewc", 0.1, 0.01), ("ewc", 5.0, 0.5),  # c·s above 1/lr = 2 for some weights: clipped
    ("rgn", 0.1, 0.01), ("rgn", 5.0, 0.5),
])
def test_reg_ft_pull_equals_mind_backs_gradient_modifier(weighting: str, c: float, lr: float):
    """The pull on a conv kernel and a linear weight equals the study's own
    ``gradient_modifier`` (transcribed above): sign, the unclipped PLAIN_DIST, the clip of
    COEFF · s to [0, 1/lr], the RGN map per (out, in) pair broadcast over the kernel's taps,
    the EWC map element-wise."""
    g = torch.Generator().manual_seed(3)
    shapes = {"conv": (3, 2, 3, 3), "lin": (4, 5)}
    theta = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    theta0 = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    grad = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    maps = {"rgn": {"conv": 50 * torch.rand(3, 2, generator=g),
                    "lin": 50 * torch.rand(4, 5, generator=g)},
            "ewc": {k: 50 * torch.rand(s, generator=g) for k, s in shapes.items()}}
    params = {k: nn.Parameter(v.clone()) for k, v in theta.items()}
    for k, p in params.items():
        p.grad = grad[k].clone()
    recipe = get_recipe(RecipeSpec.make("reg_ft", weighting=weighting, c=c))
    recipe.configure(_Body(**params), _start(**theta0), None if weighting == "distance"
                     else {weighting: maps[weighting]})
    recipe.after_backward(_Body(**params), lr=lr)

    model, ref = _study_net(theta), _study_net(theta0)
    for k, p in model.bottom_up.named_parameters():
        p.grad = grad[k].clone()
    reg = SimpleNamespace(PLAIN_DIST=weighting == "distance", EWC=weighting == "ewc")
    cfg = SimpleNamespace(TRAIN=SimpleNamespace(REG=reg), SOLVER=SimpleNamespace(COEFF=c))
    scale = {f"bottom_up.{k}": v for k, v in maps.get(weighting, {}).items()}
    with torch.no_grad():
        _mind_back_gradient_modifier(cfg, model, ref, scale, lr)
    for k, p in model.bottom_up.named_parameters():
        torch.testing.assert_close(params[k].grad, p.grad, rtol=1e-6, atol=1e-6)
        assert not torch.equal(p.grad, grad[k])  # the pull acted


def test_reg_ft_rgn_weighting_broadcasts_per_pair_over_kernel_taps():
    w = nn.Parameter(torch.full((2, 1, 2, 2), 3.0))
    w.grad = torch.zeros_like(w)
    model = _Body(conv=w)
    recipe = get_recipe(RecipeSpec.make("reg_ft", weighting="rgn", c=0.5))
    assert recipe.needs_importance
    rgn_map = torch.tensor([[2.0], [100.0]])  # one value per (out, in) pair
    recipe.configure(model, _start(conv=torch.ones(2, 1, 2, 2)), {"rgn": {"conv": rgn_map}})
    recipe.after_backward(model, lr=0.5)
    # out 0: clip(0.5·2, 0, 2) = 1 → grad (3−1)·1 = 2; out 1: clip(50, 0, 2) = 2 → 4
    assert w.grad[0].flatten().tolist() == [2.0] * 4
    assert w.grad[1].flatten().tolist() == [4.0] * 4


def test_reg_ft_ewc_weighting_is_element_wise():
    w = nn.Parameter(torch.tensor([1.0, 1.0]))
    w.grad = torch.zeros(2)
    model = _Body(w=w)
    recipe = get_recipe(RecipeSpec.make("reg_ft", weighting="ewc", c=1.0))
    recipe.configure(model, _start(w=torch.zeros(2)), {"ewc": {"w": torch.tensor([0.25, 0.0])}})
    recipe.after_backward(model, lr=0.1)
    assert w.grad.tolist() == pytest.approx([0.25, 0.0])


def test_regularised_and_wise_recipes_start_from_dp():
    for name in ("dp_ft", "reg_ft"):
        parent = get_recipe(RecipeSpec.make(name, dp_lr=0.02)).parent_recipe()
        assert parent == RecipeSpec.make("dp", lr=0.02)
    # WiSE-FT mixes a DP-FT run (with the same parameters) with its DP start
    wise = get_recipe(RecipeSpec.make("wise_ft", dp_lr=0.02, alpha=0.3)).parent_recipe()
    assert wise == RecipeSpec.make("dp_ft", dp_lr=0.02)


def test_wise_ft_averages_every_weight_with_the_start():
    net = nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[4.0, 0.0]]))
        net.bias.fill_(2.0)
    start = {"weight": torch.tensor([[0.0, 2.0]]), "bias": torch.tensor([0.0])}
    get_recipe(RecipeSpec.make("wise_ft", alpha=0.25)).finalize(net, start)
    # 0.75·start + 0.25·final
    assert net.weight.tolist() == [[1.0, 1.5]]
    assert net.bias.tolist() == [0.5]


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("reg_ft", {"weighting": "fisher"}, "weighting='fisher'"),
        ("wise_ft", {"beta": 1}, "unknown parameter 'beta'"),
        ("dp", {"dp_lr": 0.1}, "unknown parameter 'dp_lr'"),
    ],
)
def test_bad_recipe_parameters_are_named(name, params, match):
    with pytest.raises(ConfigError, match=match):
        get_recipe(RecipeSpec.make(name, **params))


@pytest.mark.parametrize("weighting", ["distance", "ewc", "rgn"])
def test_fused_regulariser_equals_the_per_tensor_formula(weighting: str) -> None:
    """The fused ``torch._foreach_*`` update gives bit for bit what the formula gives tensor
    by tensor: grad + (θ − θ0) · clip(c·s, 0, 1/lr), s broadcast over a conv kernel's taps
    (``distance``: grad + (θ − θ0) · c)."""
    g = torch.Generator().manual_seed(0)
    shapes = {"conv": (4, 3, 3, 3), "fc": (5, 7), "bias": (5,), "frozen": (2, 2)}
    params = {k: nn.Parameter(torch.randn(s, generator=g)) for k, s in shapes.items()}
    start = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    maps = {"conv": torch.rand(4, 3, generator=g) * 30, "fc": torch.rand(5, 7, generator=g),
            "bias": torch.rand(5, generator=g) * 50}  # "frozen": no map (no gradient at start)
    if weighting == "ewc":
        maps["conv"] = torch.rand(4, 3, 3, 3, generator=g)
    grads = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    for k, p in params.items():
        p.grad = grads[k].clone()
    params["frozen"].grad = None  # a tensor that got no gradient this step is left alone
    model = _Body(**params)
    recipe = get_recipe(RecipeSpec.make("reg_ft", weighting=weighting, c=0.3))
    recipe.configure(model, _start(**start), {"rgn": maps, "ewc": maps})
    lr = 0.05
    recipe.after_backward(model, lr=lr)
    for k in ("conv", "fc", "bias"):
        if weighting == "distance":
            coef = 0.3
        else:
            s = maps[k][:, :, None, None] if maps[k].dim() == 2 and len(shapes[k]) == 4 \
                else maps[k]
            coef = (0.3 * s).clamp(0.0, 1 / lr)
        expected = grads[k] + (params[k].detach() - start[k]) * coef
        assert torch.equal(params[k].grad, expected), k
    assert params["frozen"].grad is None
