"""The input pipeline a body is fed (benchmark.models.study_input): the suite's, and with
``study_compat`` mind_back's (VisionLearningGroup/mind_back@5e6694f) — each checked against
a hand-derived known answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from benchmark.models.study_input import NOISE_SEED, StudyTransform, perturb_batchnorm


def test_perturbed_statistics_are_one_momentum_step_towards_the_noise() -> None:
    """mind_back runs the network once in train mode on U(0, 1) noise before freezing: a
    BatchNorm layer right at the input moves its running mean 10 % towards the noise's
    per-channel mean and its variance 10 % towards the noise's unbiased variance."""
    frozen = FrozenBatchNorm2d(3)
    frozen.running_mean.copy_(torch.tensor([0.2, -1.0, 3.0]))
    frozen.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
    body = nn.Sequential(frozen)
    assert perturb_batchnorm(body) == 1
    assert body[0] is frozen  # frozen again, the same module
    noise = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(NOISE_SEED))
    x = noise.double().transpose(0, 1).reshape(3, -1)
    want_mean = 0.9 * torch.tensor([0.2, -1.0, 3.0]).double() + 0.1 * x.mean(1)
    want_var = 0.9 * torch.tensor([4.0, 1.0, 0.25]).double() + 0.1 * x.var(1, unbiased=True)
    assert torch.allclose(frozen.running_mean.double(), want_mean, atol=1e-6)
    assert torch.allclose(frozen.running_var.double(), want_var, atol=1e-6)
    # U(0, 1): mean 1/2, variance 1/12 — the statistics the defect pulls towards
    assert abs(x.mean().item() - 0.5) < 0.01 and abs(x.var().item() - 1 / 12) < 0.01


def test_a_body_without_batchnorm_is_left_alone() -> None:
    body = nn.Sequential(nn.Conv2d(3, 4, 1), nn.GroupNorm(2, 4))
    before = {k: v.clone() for k, v in body.state_dict().items()}
    assert perturb_batchnorm(body) == 0
    assert all(torch.equal(before[k], v) for k, v in body.state_dict().items())


def _transform(reverse: bool, train: bool = False) -> StudyTransform:
    t = StudyTransform((4,), 100, [0.5, 0.4, 0.3], [1.0, 1.0, 1.0], reverse=reverse)
    return t.train(train)


def test_study_resize_rounds_as_detectron2_and_resizes_with_pil() -> None:
    """detectron2's ResizeShortestEdge.get_output_shape on a 3x5 image to short side 4:
    scale 4/3, new width 5·4/3 = 6.67 → int(6.67 + 0.5) = 7 (torchvision floors it to 6);
    the pixels are PIL's bilinear resize of the uint8 image, boxes scaled by 7/5 and 4/3."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)
    image = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    target = {"boxes": torch.tensor([[1.0, 0.0, 5.0, 3.0]])}
    out, tgt = _transform(False).resize(image, target)
    assert out.shape == (3, 4, 7)
    want = np.asarray(Image.fromarray(pixels).resize((7, 4), Image.BILINEAR))
    assert torch.equal((out * 255).round().to(torch.uint8).permute(1, 2, 0),
                       torch.from_numpy(want.copy()))
    assert tgt is not None
    assert torch.allclose(tgt["boxes"], torch.tensor([[1.4, 0.0, 7.0, 4.0]]))


@pytest.mark.parametrize(("reverse", "want"), [(False, [0.5, -0.4, -0.3]),
                                               (True, [-0.5, -0.4, 0.7])])
def test_reversed_channels_meet_the_statistics_in_rgb_order(reverse: bool,
                                                            want: list[float]) -> None:
    """A pure red pixel (1, 0, 0) normalised with mean (0.5, 0.4, 0.3): RGB gives
    (0.5, -0.4, -0.3); mind_back's BGR image (0, 0, 1) with the same RGB-ordered mean gives
    (-0.5, -0.4, 0.7)."""
    red = torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 2, 2)
    out = _transform(reverse).normalize(red)
    assert torch.allclose(out[:, 0, 0], torch.tensor(want))
