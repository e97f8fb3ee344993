"""PRIME on detection images: seeded, in range, identity at identity settings, primitives
against hand-computed values, and boxes that follow the spatial primitive."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.data import prime as P
from benchmark.errors import ConfigError
from benchmark.recipes import get_recipe
from benchmark.spec import RecipeSpec


def _image(seed: int = 0, h: int = 24, w: int = 32) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


BOXES = torch.tensor([[2.0, 3.0, 12.0, 15.0], [10.5, 4.25, 30.0, 20.0]])


def test_same_seed_same_output_different_seed_different():
    img = _image()
    a, ba = P.prime(img, BOXES, _gen(7))
    b, bb = P.prime(img, BOXES, _gen(7))
    c, _ = P.prime(img, BOXES, _gen(8))
    assert torch.equal(a, b) and torch.equal(ba, bb)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("seed", range(6))
def test_output_stays_in_unit_range_and_boxes_in_image(seed: int):
    img = _image(seed)
    out, boxes = P.prime(img, BOXES, _gen(seed))
    assert out.shape == img.shape and out.min() >= 0 and out.max() <= 1
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert boxes.min() >= 0 and (boxes[:, [0, 2]] <= 32).all() and (boxes[:, [1, 3]] <= 24).all()


def test_identity_settings_give_back_the_input():
    img = _image()
    delta = torch.zeros(3, 3)
    delta[1, 1] = 1.0  # σ = 0: the kernel is δ at its centre
    assert torch.equal(P.spectral_filter(img, delta), img)
    assert torch.equal(P.smooth_color(img, torch.tensor([1.0, 2.0]), torch.zeros(3, 2)), img)
    zero = torch.zeros(24, 32)
    assert torch.equal(P.remap(img, zero, zero), img)
    assert torch.equal(P.remap_boxes(BOXES, zero, zero), BOXES)
    chains = [torch.zeros_like(img), torch.ones_like(img)]
    assert torch.equal(P.mix(img, chains, torch.tensor([0.5, 0.5]), 0.0), img)


def test_colour_primitive_by_hand():
    img = torch.full((3, 2, 2), 0.5)
    freqs = torch.tensor([1.0, 2.0])
    coeff = torch.tensor([[0.1, 0.3], [-0.2, 0.0], [0.7, 0.0]])
    out = P.smooth_color(img, freqs, coeff)
    # 0.5 + c1·sin(π/2) + c2·sin(π) = 0.5 + c1 (sin π ≈ 1.2e-16); channel 2 clamps to 1
    assert out[0].flatten().tolist() == pytest.approx([0.6] * 4, abs=1e-6)
    assert out[1].flatten().tolist() == pytest.approx([0.3] * 4, abs=1e-6)
    assert out[2].flatten().tolist() == [1.0] * 4


def test_spectral_primitive_by_hand():
    img = torch.zeros(1, 3, 3)
    img[0, 1, 1] = 0.5
    kernel = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.4], [0.0, 0.0, 0.0]])
    out = P.spectral_filter(img, kernel)[0]
    # cross-correlation: out[y, x] = Σ k[i, j]·img[y + i − 1, x + j − 1]
    assert out.flatten().tolist() == pytest.approx([0, 0, 0, 0.2, 0.5, 0, 0, 0, 0])


def test_boxes_follow_a_translation():
    """dx = 3: output pixel x samples x − 3, content moves 3 px right; the box over pixels
    10…19 becomes the cover of pixels 13…22."""
    img = torch.zeros(1, 30, 40)
    img[:, 10:20, 10:20] = 1.0
    dx, dy = torch.full((30, 40), 3.0), torch.zeros(30, 40)
    out = P.remap(img, dx, dy)
    assert torch.equal(out[:, 10:20, 13:23], torch.ones(1, 10, 10)) and out.sum() == 100
    box = P.remap_boxes(torch.tensor([[10.0, 10.0, 20.0, 20.0]]), dx, dy)
    assert box.tolist() == [[13.0, 10.0, 23.0, 20.0]]


def _prime_temperature_range(n, cut):
    """amodas/PRIME-augmentations@0290f6b utils/diffeomorphism.py:183-197, transcribed
    verbatim (the print of a zero cut left out)."""
    if isinstance(cut, (float, int)):
        cut = cut + 1e-6
        log = math.log(cut)
    else:
        log = cut.log()
    T1 = 1 / (math.pi * n ** 2 * log)
    T2 = 4 / (math.pi ** 3 * cut ** 2 * log)
    return T1, T2


@pytest.mark.parametrize(("n", "cut"), [(224, 10), (32, 2), (600, 500), (24, 3)])
def test_temperature_range_is_primes(n: int, cut: int):
    assert P.temperature_range(n, cut) == pytest.approx(_prime_temperature_range(n, cut),
                                                         rel=1e-12)


def test_mix_by_hand():
    """PRIME's mix (utils/prime.py:82-83): (1 − m)·x + m·Σ w_i chain_i. x = 0.5, chains 0
    and 1 with weights 0.25 / 0.75, m = 0.4: 0.6·0.5 + 0.4·0.75 = 0.6."""
    img = torch.full((1, 2, 2), 0.5)
    chains = [torch.zeros_like(img), torch.ones_like(img)]
    out = P.mix(img, chains, torch.tensor([0.25, 0.75]), 0.4)
    assert out.flatten().tolist() == pytest.approx([0.6] * 4)


@pytest.mark.parametrize("variant", P.VARIANTS)
def test_identity_primitives_give_back_the_image(monkeypatch, variant: str):
    """With every primitive (and the displacement) the identity, PRIME returns its input:
    the Dirichlet weights sum to one (PRIME's ``Dirichlet``, prime.py:55) and the mix is
    affine in them."""
    monkeypatch.setattr(P, "_primitive", lambda x, gen, scale=1.0: x)
    monkeypatch.setattr(P, "draw_diffeo", lambda gen, h, w: (torch.zeros(h, w),
                                                            torch.zeros(h, w)))
    img = _image(4)
    for seed in range(5):
        out, boxes = P.prime(img, BOXES, _gen(seed), variant=variant)
        torch.testing.assert_close(out, img, rtol=0, atol=1e-6)
        assert torch.equal(boxes, BOXES)


def test_spectral_kernel_at_sigma_0_leaves_image_and_boxes_in_place():
    """σ = 0: the kernel is the δ alone. Here it sits at the kernel's centre, so the filtered
    image is the image; PRIME's ``ceil(k / 2)`` (rand_filter.py:31-32) would move it by a
    pixel against its boxes (a documented deviation, benchmark/data/prime.py)."""
    kernel = P.draw_kernel(_gen(0), sigma_max=0.0)
    assert kernel.abs().sum() == 1 and kernel[1, 1] == 1
    img = _image(2)
    assert torch.equal(P.spectral_filter(img, kernel), img)


def test_prime_ft_recipe_transforms_with_the_given_generator():
    recipe = get_recipe(RecipeSpec.make("prime_ft"))
    images = [_image(1), _image(2, 20, 20)]
    targets = [{"boxes": BOXES, "labels": torch.tensor([0, 1])},
               {"boxes": BOXES[:1], "labels": torch.tensor([2])}]
    a_img, a_t = recipe.transform_batch(images, targets, _gen(3))
    b_img, b_t = recipe.transform_batch(images, targets, _gen(3))
    assert all(torch.equal(x, y) for x, y in zip(a_img, b_img, strict=True))
    assert all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(a_t, b_t, strict=True))
    assert not torch.equal(a_img[0], images[0]) and torch.equal(a_t[1]["labels"], torch.tensor([2]))


# ---- the transfer study's variant --------------------------------------------------------------
def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the primitives and spatial draws PRIME makes (the originals still run)."""
    calls = {"spectral": 0, "colour": 0, "diffeo": 0}
    for name, key in (("spectral_filter", "spectral"), ("smooth_color", "colour"),
                      ("draw_diffeo", "diffeo")):
        original = getattr(P, name)

        def counted(*args, _f=original, _k=key, **kwargs):
            calls[_k] += 1
            return _f(*args, **kwargs)

        monkeypatch.setattr(P, name, counted)
    return calls


def test_study_variant_is_one_colour_or_spectral_primitive_per_chain(monkeypatch):
    """The study's runner: no spatial primitive, depth 1 — each of the 3 chains is exactly
    one primitive, colour or spectral; boxes never move. PRIME's ImageNet variant, for
    contrast, draws one displacement and 1–3 primitives per chain."""
    calls = _counting(monkeypatch)
    kinds = set()
    for seed in range(12):
        before = dict(calls)
        out, boxes = P.prime(_image(seed), BOXES, _gen(seed), variant="study")
        made = {k: calls[k] - before[k] for k in calls}
        assert made["diffeo"] == 0 and made["spectral"] + made["colour"] == P.MIXTURE_WIDTH
        kinds |= {k for k in ("spectral", "colour") if made[k]}
        assert torch.equal(boxes, BOXES) and out.min() >= 0 and out.max() <= 1
    assert kinds == {"spectral", "colour"}  # both primitives are drawn
    depths = set()
    for seed in range(12):
        before = dict(calls)
        P.prime(_image(seed), BOXES, _gen(seed))
        assert calls["diffeo"] - before["diffeo"] == 1
        depths.add(calls["spectral"] + calls["colour"] - before["spectral"] - before["colour"])
    assert min(depths) >= 3 and max(depths) <= 9 and len(depths) > 1


@pytest.mark.parametrize("seed", range(4))
def test_study_variant_at_0_255_is_a_darkening_by_one_factor(seed: int):
    """scale=255 (the study's arithmetic): each primitive sees 255·x and clamps to [0, 1],
    so every chain is at most 1/255 in image units, and the output is (1 − m)·x + m·c with
    one m per image and 0 ≤ c ≤ 1/255: out ≥ (1 − m)·x ⇔ m ≥ 1 − out/x, and
    out ≤ (1 − m)·x + m/255 ⇔ m ≤ (x − out)/(x − 1/255) — one m satisfies both at every
    pixel (x ≥ 0.2 here)."""
    img = 0.2 + 0.8 * _image(seed)
    out, boxes = P.prime(img, BOXES, _gen(seed), variant="study", scale=255.0)
    lower = (1 - out / img).max()
    upper = ((img - out) / (img - 1 / 255)).min()
    assert float(lower) <= float(upper) + 1e-5
    assert torch.equal(boxes, BOXES)


def test_prime_ft_variant_parameter():
    """The recipe's default stays PRIME's ImageNet variant (other grids unchanged); the
    study's variant and scale are parameters; an unknown variant is refused."""
    images = [_image(1)]
    targets = [{"boxes": BOXES, "labels": torch.tensor([0, 1])}]
    default = get_recipe(RecipeSpec.make("prime_ft"))
    assert default.params["variant"] == "imagenet" and default.params["scale"] == 1.0
    a, _ = default.transform_batch(images, targets, _gen(5))
    b, _ = P.prime(images[0], BOXES, _gen(5))
    assert torch.equal(a[0], b)
    study = get_recipe(RecipeSpec.make("prime_ft", variant="study", scale=255))
    c, t = study.transform_batch(images, targets, _gen(5))
    d, _ = P.prime(images[0], BOXES, _gen(5), variant="study", scale=255.0)
    assert torch.equal(c[0], d) and torch.equal(t[0]["boxes"], BOXES)
    with pytest.raises(ConfigError, match="variant='diffeo'"):
        get_recipe(RecipeSpec.make("prime_ft", variant="diffeo"))
