"""RGN on a tiny model against values computed by hand (both definitions)."""

import math

import pytest
import torch
from torch import nn

from benchmark.rgn import measure_rgn


def _tiny():
    lin = nn.Linear(2, 1, bias=False)
    conv = nn.Conv2d(1, 1, kernel_size=2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0]]))
        conv.weight.copy_(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
    return lin, conv


def test_rgn_both_definitions_match_hand_computation():
    lin, conv = _tiny()

    def loss(scale: float) -> torch.Tensor:
        # d/dW_lin = x = scale*[3, 4]; d/dW_conv = the 2x2 input = scale*ones
        x = torch.tensor([3.0, 4.0]) * scale
        img = torch.ones(1, 1, 2, 2) * scale
        return lin(x).sum() + conv(img).sum()

    acc = measure_rgn(loss, [("lin", lin.weight), ("conv", conv.weight)], [1.0, 2.0])
    out = acc.result()

    # code definition, linear: batch 1 |G|/|W| = [3/1, 4/2] = [3, 2]; batch 2 = [6, 4]
    # → mean map [4.5, 3] → tensor value 3.75
    # conv (spatial sums first): batch 1 4/10 = 0.4; batch 2 8/10 = 0.8 → 0.6
    assert out["per_tensor"]["lin"]["rgn"] == pytest.approx(3.75)
    assert out["per_tensor"]["conv"]["rgn"] == pytest.approx(0.6)
    assert out["rgn"] == pytest.approx((3.75 + 0.6) / 2)
    # L2 definition: linear 5/√5 and 10/√5 → 7.5/√5; conv 2/√30 and 4/√30 → 3/√30
    assert out["per_tensor"]["lin"]["rgn_l2"] == pytest.approx(7.5 / math.sqrt(5))
    assert out["per_tensor"]["conv"]["rgn_l2"] == pytest.approx(3 / math.sqrt(30))
    assert out["rgn_l2"] == pytest.approx((7.5 / math.sqrt(5) + 3 / math.sqrt(30)) / 2)
    assert out["n_batches"] == 2
    # the maps regularised fine-tuning uses: RGN per (out, in) pair, EWC mean |G| per weight
    maps = acc.importance()
    assert maps["rgn"]["lin"].flatten().tolist() == pytest.approx([4.5, 3.0])
    assert maps["rgn"]["conv"].shape == (1, 1) and float(maps["rgn"]["conv"]) == pytest.approx(0.6)
    assert maps["ewc"]["lin"].flatten().tolist() == pytest.approx([4.5, 6.0])
    assert maps["ewc"]["conv"].flatten().tolist() == pytest.approx([1.5] * 4)
    # measuring leaves the weights and gradients untouched
    assert lin.weight.grad is None and conv.weight.grad is None
    assert lin.weight.tolist() == [[1.0, -2.0]]


def test_rgn_conv_spatial_sum_differs_from_elementwise():
    """A kernel whose spatial entries have mixed magnitudes: summing over (kh, kw) first
    (the published code) gives |ΣG|/|ΣW| per (out, in) pair, not the mean of ratios."""
    conv = nn.Conv2d(1, 1, kernel_size=2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0, 1.0], [1.0, 7.0]]]]))
    img = torch.tensor([[[[2.0, 0.0], [0.0, 0.0]]]])  # gradient only on the first tap
    out = measure_rgn(lambda _: conv(img).sum(), [("c", conv.weight)], [0]).result()
    assert out["rgn"] == pytest.approx(2.0 / 10.0)  # not mean([2/1, 0, 0, 0]) = 0.5


def test_importance_maps_use_their_own_batch_count(bench_env) -> None:
    """RGN over ``rgn_batches`` (mind_back: 100), a regulariser's importance over
    ``importance_batches`` (mind_back's ITER_GRAD_COMP: 5000), both capped by |train|/batch."""
    from dataclasses import replace

    from benchmark.data.split import load_split
    from benchmark.grid import load_grid
    from benchmark.spec import RecipeSpec, derive_seed
    from benchmark.store import TrainingDir
    from benchmark.training import Trainer
    from tests.conftest import TESTS

    spec = load_grid(str(TESTS / "grids" / "resume.yaml")).runs[0]
    spec = replace(spec, recipe=RecipeSpec.make("reg_ft", weighting="ewc"),
                   schedule=replace(spec.schedule, rgn_batches=1, importance_batches=3))
    trainer = Trainer(spec, load_split(spec.train_split), TrainingDir("t"))
    model = trainer.build(None)
    rgn, importance = trainer.measure_rgn(model)
    assert rgn["n_batches"] == 1

    def loss(it: int) -> torch.Tensor:  # the same batches, seeded the same way
        images, targets = trainer.batch(it, purpose="rgn")
        torch.manual_seed(derive_seed(trainer.seed, "rgn-step", it))
        return sum(model.losses(images, targets).values())

    # the maps by hand (torch.autograd.grad, not measure_rgn): mind_back's EWC importance is
    # Σ_batches |G| / ITER_GRAD_COMP (tools/utils.py:70-72), i.e. the mean |G| over the 3
    # batches, not over the 1 batch RGN used
    params = model.body_parameters()
    grads = [torch.autograd.grad(loss(it), [p for _, p in params], allow_unused=True)
             for it in range(3)]
    assert set(importance["ewc"]) == {n for i, (n, _) in enumerate(params)
                                      if grads[0][i] is not None}
    for i, (name, _) in enumerate(params):
        if grads[0][i] is None:
            continue
        by_hand = sum(g[i].double().abs() for g in grads) / 3
        torch.testing.assert_close(importance["ewc"][name], by_hand.float(), rtol=1e-5,
                                   atol=1e-12)
        one = grads[0][i].abs()
        assert importance["ewc"][name].shape == one.shape
    assert any(not torch.allclose(importance["ewc"][n], grads[0][i].abs())
               for i, (n, _) in enumerate(params) if grads[0][i] is not None)


# ---- the study's tensor set ------------------------------------------------------------------
def _body_rgn(backbone: str) -> tuple[dict, dict]:
    """RGN of a random-init body on a stand-in loss (the sum of its levels): the reported
    result and the importance maps, over every trainable body tensor."""
    from benchmark.models.backbones import build_body

    torch.manual_seed(0)
    body = build_body(backbone, "none", None)
    params = [(n, p) for n, p in body.named_parameters() if p.requires_grad]
    x = torch.rand(1, 3, 64, 64)
    acc = measure_rgn(lambda _: sum(f.sum() for f in body.levels(x).values()), params, [0])
    return acc.result(), acc.importance()


@pytest.mark.parametrize(("backbone", "trainable", "se"), [
    # timm's EfficientNet-B0 (timm/models/efficientnet.py ``_gen_efficientnet``): stages of
    # 1, 2, 2, 3, 3, 4, 1 blocks; B2 has depth multiplier 1.2, rounded up per stage:
    # 2, 3, 3, 4, 4, 5, 2. The body freezes the stem and blocks[0] (FREEZE_AT=2) and every
    # BatchNorm (buffers then). Each block of blocks[1:] is an InvertedResidual with three
    # conv kernels (conv_pw, conv_dw, conv_pwl; no bias) and an SE module of two 1x1 convs
    # with bias (se.conv_reduce, se.conv_expand): 3 + 4 = 7 trainable tensors, 4 of them SE.
    # B0: 2+2+3+3+4+1 = 15 blocks → 105 tensors, 60 SE, 45 in the study's RGN.
    ("tf_efficientnet_b0", 15 * 7, 15 * 4),
    # B2: 3+3+4+4+5+2 = 21 blocks → 147 tensors, 84 SE, 63 in the study's RGN.
    ("tf_efficientnet_b2", 21 * 7, 21 * 4),
])
def test_rgn_leaves_out_the_se_tensors_as_the_study_does(backbone, trainable, se):
    """mind_back's RGN skips every tensor whose name contains ``se.`` (VisionLearningGroup/
    mind_back@5e6694f tools/compute_rgn.py:57); a regulariser's importance maps keep them
    (its tools/utils.py:67-79 measures every backbone tensor)."""
    result, importance = _body_rgn(backbone)
    assert len(importance["rgn"]) == len(importance["ewc"]) == trainable
    assert len(result["per_tensor"]) == trainable - se
    assert len(result["excluded"]) == se
    assert all(".se.conv_" in n for n in result["excluded"])
    assert not any(".se." in n for n in result["per_tensor"])
    mean = sum(t["rgn"] for t in result["per_tensor"].values()) / (trainable - se)
    assert result["rgn"] == pytest.approx(mean)


def test_the_demo_backbones_have_no_tensor_the_study_leaves_out():
    """EfficientNet-Lite0 has no SE (``se_ratio=None`` in every block of
    efficientnet_lite_pytorch's efficientnet-lite0 arguments) and torchvision's ResNet-18
    none either: the demo's RGN is over the same tensors as before, and its result has
    no ``excluded`` key (the record keeps its shape)."""
    from efficientnet_lite_pytorch import EfficientNet

    assert not any(b.has_se for b in EfficientNet.from_name("efficientnet-lite0")._blocks)
    for backbone, trainable in (("efficientnet_lite0", 39), ("resnet18", 60)):
        result, importance = _body_rgn(backbone)
        assert len(result["per_tensor"]) == len(importance["rgn"]) == trainable
        assert "excluded" not in result
        assert list(result) == ["rgn", "rgn_l2", "n_batches", "per_tensor"]


def test_the_study_rule_catches_only_se_modules_in_every_body():
    """``'se.' in name`` is a substring test: on every registered body (random init) it
    matches the tensors of squeeze-and-excitation modules and nothing else."""
    from benchmark.models.backbones import BACKBONES
    from benchmark.rgn import in_study_rgn

    with_se = set()
    for name in BACKBONES.names():
        with torch.device("meta"):
            body = BACKBONES.get(name)("none")
        se_modules = {m for m in body.modules() if "SqueezeExcit" in type(m).__name__
                      or type(m).__name__ in ("SEModule", "EffectiveSEModule")}
        se_tensors = {n for n, p in body.named_parameters()
                      if any(p is q for m in se_modules for q in m.parameters())}
        caught = {n for n, _ in body.named_parameters() if not in_study_rgn(n)}
        assert caught == se_tensors, name
        with_se |= {name} if se_tensors else set()
    assert with_se == {"efficientnet_b0", "efficientnet_b2", "tf_efficientnet_b0",
                       "tf_efficientnet_b2", "seresnet50"}
