"""The detectron2 engine's body wrapper, without detectron2: the level renaming and DP's
detach that ``BodyBackbone`` (detectron2's ``Backbone`` around the suite's body) inherits from
:class:`~benchmark.models.detectron2_engine.BodyLevels`, and the engine's
``set_detach_body`` reaching it. Runs everywhere (tests/test_engine_detectron2.py needs
detectron2 and is skipped where it is not importable)."""

from __future__ import annotations

import torch
from torch import nn

from benchmark.models.backbones import build_body
from benchmark.models.detectron2_engine import LEVEL_NAMES, BodyLevels, Detectron2FasterRCNN

SMALL = ("res3", "res4", "res5")  # detectron2_small: P3–P5 (detectron2 names, strides 8-32)


def _body() -> nn.Module:
    torch.manual_seed(0)
    return build_body("resnet18", "none", None)  # GroupNorm, every tensor trainable


def test_levels_are_renamed_res2_to_res5_by_stride():
    body = _body()
    x = torch.rand(1, 3, 64, 96)
    out = BodyLevels(body, SMALL)(x)
    assert list(out) == list(SMALL)
    # res<k> is the stride-2^k level: 64 × 96 → 8 × 12, 4 × 6, 2 × 3
    assert [tuple(v.shape[-2:]) for v in out.values()] == [(8, 12), (4, 6), (2, 3)]
    plain = list(body.levels(x).values())  # strides 4, 8, 16, 32
    for name, level in zip(LEVEL_NAMES, plain, strict=True):
        if name in out:
            assert torch.equal(out[name], level)
    full = BodyLevels(body, LEVEL_NAMES)(x)
    assert [tuple(v.shape[-2:]) for v in full.values()] == [(16, 24), (8, 12), (4, 6), (2, 3)]


def test_dp_detach_stops_every_gradient_at_the_body():
    """DP (decoder probing): the body's outputs are detached, so a loss on them leaves every
    body tensor without a gradient; without it, the gradient reaches the stem."""
    body = _body()
    wrapper = BodyLevels(body, SMALL)
    x = torch.rand(2, 3, 64, 64)
    assert not wrapper.detach_body  # FT: attached
    sum(v.sum() for v in wrapper(x).values()).backward()
    stem = next(iter(body.parameters()))
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    body.zero_grad(set_to_none=True)
    wrapper.detach_body = True
    out = wrapper(x)
    assert all(not v.requires_grad for v in out.values())
    head = nn.Parameter(torch.ones(()))  # a decoder stand-in: still trains
    sum((head * v).sum() for v in out.values()).backward()
    assert all(p.grad is None for p in body.parameters())
    assert head.grad is not None


def test_the_engines_set_detach_body_reaches_the_wrapper_and_state_names_stay():
    """``Detectron2FasterRCNN.set_detach_body`` sets the flag the wrapper reads; the body's
    tensors keep the names ``model.backbone.bottom_up.body.*`` (``body_state_prefix``), so
    checkpoints written before the wrapper was factored out still load."""
    body = _body()
    model = nn.Module()
    model.backbone = nn.Module()
    model.backbone.bottom_up = BodyLevels(body, SMALL)
    det = Detectron2FasterRCNN(model, (64,), 64, 64)
    assert det.body is body
    det.set_detach_body(True)
    assert model.backbone.bottom_up.detach_body is True
    out = model.backbone.bottom_up(torch.rand(1, 3, 64, 64))
    assert all(not v.requires_grad for v in out.values())
    det.set_detach_body(False)
    assert all(v.requires_grad for v in model.backbone.bottom_up(torch.rand(1, 3, 64, 64))
               .values())
    prefix = det.body_state_prefix()
    assert prefix == "model.backbone.bottom_up.body."
    state = det.state_dict()
    assert set(det.body_state(state)) == set(body.state_dict())
    assert all(k.startswith(prefix) for k in state)
