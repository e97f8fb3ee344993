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
    from benchmark.rgn import measure_rgn
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

    params = model.body_parameters()
    over_3 = measure_rgn(loss, params, range(3)).importance()["ewc"]
    over_1 = measure_rgn(loss, params, range(1)).importance()["ewc"]
    assert all(torch.equal(importance["ewc"][k], over_3[k]) for k in over_3)
    assert any(not torch.equal(over_3[k], over_1[k]) for k in over_3)
