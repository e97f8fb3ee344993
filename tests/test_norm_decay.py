"""Weight decay of normalisation layers (benchmark.training.norm_decay): detectron2's
SOLVER.WEIGHT_DECAY_NORM (facebookresearch/detectron2@02b5c4e2 detectron2/solver/build.py
:203-229, config/defaults.py:541)."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from benchmark.spec import Schedule
from benchmark.training.norm_decay import with_norm_decay


def _model() -> nn.Sequential:
    # conv 3→4 (3·4·3·3 = 108 weights + 4 biases), BatchNorm(4) (4 + 4), GroupNorm(2, 4)
    # (4 + 4), a frozen BatchNorm (buffers only), LayerNorm(4) (4 + 4), Linear 4→2 (8 + 2)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.GroupNorm(2, 4),
                         FrozenBatchNorm2d(4), nn.Flatten(), nn.LayerNorm(4), nn.Linear(4, 2))


def test_norm_tensors_get_their_own_group_with_the_norm_decay() -> None:
    model = _model()
    groups = [{"params": list(model.parameters()), "lr": 0.1, "name": "decoder"}]
    out = with_norm_decay(model, groups, 0.0)
    assert [g["name"] for g in out] == ["decoder", "decoder.norm"]
    # by hand: 6 norm tensors (weight + bias of BatchNorm, GroupNorm, LayerNorm) of 4 values
    assert len(out[1]["params"]) == 6 and sum(p.numel() for p in out[1]["params"]) == 24
    assert out[1]["weight_decay"] == 0.0 and "weight_decay" not in out[0]
    assert sum(p.numel() for p in out[0]["params"]) == 108 + 4 + 8 + 2
    assert with_norm_decay(model, groups, None) is groups  # None: as the optimizer decays


def test_one_sgd_step_decays_weights_but_not_norms() -> None:
    """Zero gradients, lr 0.1, weight decay 0.01: SGD moves each decayed tensor by
    -lr·wd·w = -0.001·w, and leaves the norm tensors where they are."""
    model = _model()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    groups = with_norm_decay(model, [{"params": list(model.parameters()), "lr": 0.1}],
                             Schedule(iterations=1, batch_size=1, lr=0.1).weight_decay_norm)
    opt = torch.optim.SGD(groups, lr=0.1, weight_decay=0.01)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.allclose(model[0].weight, torch.full_like(model[0].weight, 0.999))
    assert torch.allclose(model[6].bias, torch.full_like(model[6].bias, 0.999))
    for norm in (model[1], model[2], model[5]):
        assert torch.equal(norm.weight, torch.ones_like(norm.weight))
        assert torch.equal(norm.bias, torch.ones_like(norm.bias))
