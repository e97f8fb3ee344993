"""PRIME augmentation (Modas et al.; the fine-tuning augmentation of Yamada & Otani) on
detection images: (C, H, W) tensors in [0, 1] with their boxes, every draw from one
``torch.Generator``.

The three primitives and their defaults are PRIME's (amodas/PRIME-augmentations@0290f6b,
ImageNet config ``config/imagenet_cfg.py``; the primitives are built ``stochastic=True`` in
``train.py:141-162``):

- spectral, ``RandomFilter`` (``utils/rand_filter.py``): one random 3×3 kernel per image,
  σ·N(0, 1) + δ, σ ~ U(0, 4), convolved with every channel ("same" zero padding), NaN → 1,
  clamped to [0, 1];
- colour, ``RandomSmoothColor`` (``utils/color_jitter.py``): x + Σ_k c_k·sin(π k x) per
  channel, cut ~ U{1..500}, T ~ U(0, 0.05), c ~ N(0, T), frequencies k = k0 … k0 + 19
  (k0 ~ U{1..cut}, at most cut), clamped;
- spatial, ``Diffeo`` (``utils/diffeomorphism.py``): a smooth random displacement field of
  the first ``cut`` sine modes (amplitude 1/|k| inside the disc |k| < cut + ½), scaled by
  √T, cut and T from Beta(½, ½) draws between cutmin 2 and a cutmax ~ U{3..500}, and
  between T1 (a typical displacement of ½ pixel) and T2 (the largest T without overhangs:
  the map stays a diffeomorphism); the image resampled bilinearly, coordinates clamped.

Then PRIME's mix (``utils/prime.py:54-85``): 3 chains (mixture_width), each 1–3 primitives
drawn uniformly, Dirichlet(1, 1, 1) weights, and x' = (1 − m)·x + m·Σ w_i chain_i(x) with
m ~ Beta(1, 1). PRIME mixes after normalising; normalisation is affine and the weights sum
to one, so mixing in [0, 1] is the same image.

What differs, and why (detection):

- **boxes**: the spatial primitive moves pixels by up to n/(π·cut) typically (``typical_
  displacement`` at T2, diffeomorphism.py:200-205: up to 0.16·n at cut 2 — not small), so
  boxes are moved with it: a box becomes the pixel cover of the output pixels whose source
  point lies inside it (exact on the pixel grid). A mix of displaced and undisplaced copies
  would have no single box, so the spatial primitive is applied once per image, before the
  mix, to every term of it; the chains draw from the spectral and colour primitives.
- the spectral kernel's δ sits at the kernel's centre (k // 2); PRIME puts it at
  ``ceil(k / 2)`` (rand_filter.py:31-32), index 2 of a 3×3 kernel, which shifts the image
  by a pixel (and would shift it against its boxes);
- non-square images: the modes are sampled on H and W points and the displacement scaled
  by H and W; T1 uses n = max(H, W);
- strengths (σ, cut, T) are drawn per image and chain (PRIME: once per batch call).

Two variants (:data:`VARIANTS`):

- ``imagenet`` (above): PRIME's ImageNet configuration.
- ``study``: what Yamada & Otani's detection fine-tuning ran
  (runopti/RobustDownstreamTransfer@a67aae8 ``mmdetection/tools/aug_utils/``):
  ``epoch_runner_with_prime.py:43-63`` builds the colour primitive (cut 500, T 0.05,
  bandwidth 20, stochastic) and the spectral one (kernel 3, σ 4, stochastic) — no
  ``Diffeo`` — with ``mixture_width=3, mixture_depth=1, max_depth=3``; ``prime.py:41``
  makes the depth ``mixture_depth`` when it is > 0, so its loop (``prime.py:72-77``) runs
  once, and the depth mask of that step is always 1 (column 0 of ``tril(ones(3, 3))``,
  ``prime.py:42, 67-68``): every chain is exactly one primitive, drawn uniformly from the
  two. Boxes and masks never move.
- ``scale`` (both variants; default 1): the pixel value the primitives see for white.
  The study's runner hands PRIME the batch after ``Normalize(mean=0, std=1)``
  (``configs/_base_/datasets/coco_instance_prime.py:6-7``; ``epoch_runner_with_prime.py:90``),
  i.e. 0–255 pixels, while the primitives clamp to [0, 1] (``color_jitter.py:63``,
  ``rand_filter.py:49``): every chain comes out nearly black, and the mix is close to
  ``(1 − m)·x``. ``scale=255`` reproduces that arithmetic (each chain is computed on
  255·x and divided by 255; the mix is affine, so mixing after the study's normalisation is
  the same image); 1 is PRIME's own [0, 1] domain.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# amodas/PRIME-augmentations@0290f6b config/imagenet_cfg.py (line): the ImageNet defaults
FILTER_KERNEL = 3  # rand_filter.kernel_size (63)
FILTER_SIGMA = 4.0  # rand_filter.sigma (64): σ ~ U(0, 4) (rand_filter.py:55, sigma_min 0)
COLOR_CUT = 500  # color_jit.cut (59): cut ~ U{1..500} (color_jitter.py:33)
COLOR_T = 0.05  # color_jit.T (60): T ~ U(0, 0.05) (color_jitter.py:34, T_min 0)
COLOR_BANDWIDTH = 20  # color_jit.max_freqs (61): frequencies per draw (color_jitter.py:41-44)
DIFFEO_CUTMIN = 2  # diffeo.cutmin (55)
DIFFEO_CUTMAX = 500  # diffeo.cutmax (56): cutmax ~ U{cutmin+1..500} (diffeomorphism.py:87)
DIFFEO_ALPHA = 1.0  # diffeo.alpha (57): T2 scaled by alpha (diffeomorphism.py:81)
# diffeo.sT = rT = scut = rcut = 1 (51-54) → Beta(s − s/(r+1), s/(r+1)) = Beta(½, ½)
# (diffeomorphism.py:58-59)
MIXTURE_WIDTH = 3  # augmix.mixture_width (72)
MAX_DEPTH = 3  # train.py:168 max_depth=3 with mixture_depth −1 (73): depth U{1..3} (prime.py:68)
#: PRIME configurations (module docstring): ImageNet's, and the transfer study's detection one
VARIANTS = ("imagenet", "study")


# ---- draws ----------------------------------------------------------------------------------
def _uniform(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=gen.device)


def _normal(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=gen, device=gen.device)


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    """Uniform on {low, …, high} (inclusive)."""
    return int(torch.randint(low, high + 1, (1,), generator=gen, device=gen.device))


def _beta_half(gen: torch.Generator) -> float:
    """Beta(½, ½), the arcsine law: sin²(π U / 2)."""
    return math.sin(math.pi * float(_uniform(gen)) / 2) ** 2


def _dirichlet_ones(gen: torch.Generator, n: int) -> torch.Tensor:
    """Dirichlet(1, …, 1): normalised Exp(1) draws."""
    e = -torch.log1p(-_uniform(gen, n))
    return e / e.sum()


# ---- spectral ---------------------------------------------------------------------------------
def spectral_filter(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Every channel cross-correlated with ``kernel`` (k × k, k odd, zero padding), NaN → 1,
    clamped to [0, 1] (rand_filter.py:41-49)."""
    k = kernel.shape[-1]
    out = F.conv2d(image[:, None], kernel[None, None].to(image.dtype), padding=k // 2)[:, 0]
    return torch.nan_to_num(out, nan=1.0).clamp(0.0, 1.0)


def draw_kernel(gen: torch.Generator, size: int = FILTER_KERNEL,
                sigma_max: float = FILTER_SIGMA) -> torch.Tensor:
    sigma = float(_uniform(gen)) * sigma_max
    kernel = sigma * _normal(gen, size, size)
    kernel[size // 2, size // 2] += 1.0
    return kernel


# ---- colour -----------------------------------------------------------------------------------
def smooth_color(image: torch.Tensor, freqs: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
    """x + Σ_f coeff[c, f]·sin(π·freqs[f]·x) per channel c, clamped (color_jitter.py:59-63);
    summed one frequency at a time (no (C, H, W, F) tensor)."""
    out = image.clone()
    for f in range(freqs.shape[0]):
        out += coeff[:, f, None, None].to(image.dtype) * torch.sin(math.pi * float(freqs[f])
                                                                   * image)
    return out.clamp(0.0, 1.0)


def draw_color(gen: torch.Generator, channels: int, cut_max: int = COLOR_CUT,
               t_max: float = COLOR_T, bandwidth: int = COLOR_BANDWIDTH
               ) -> tuple[torch.Tensor, torch.Tensor]:
    cut = _randint(gen, 1, cut_max)
    temperature = float(_uniform(gen)) * t_max
    k0 = _randint(gen, 1, cut)
    freqs = torch.arange(k0, min(k0 + bandwidth, cut + 1), dtype=torch.float32)
    return freqs, _normal(gen, channels, freqs.shape[0]) * math.sqrt(temperature)


# ---- spatial ----------------------------------------------------------------------------------
def temperature_range(n: int, cut: int) -> tuple[float, float]:
    """(T1, T2) of diffeomorphism.py:183-197."""
    log = math.log(cut + 1e-6)
    return 1 / (math.pi * n**2 * log), 4 / (math.pi**3 * (cut + 1e-6) ** 2 * log)


def displacement(gen: torch.Generator, h: int, w: int, cut: int, temperature: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(dx, dy) in pixels, each (H, W): √T · field · side, the field Σ_ij c_ij sin(π i x)
    sin(π j y) with c_ij ~ N(0, 1)/|(i, j)| for |(i, j)| < cut + ½ (diffeomorphism.py:96-141)."""
    dev = gen.device
    k = torch.arange(1, cut + 1, dtype=torch.float32, device=dev)
    r = (k[:, None] ** 2 + k[None, :] ** 2).sqrt()
    energy = (r < cut + 0.5) / r
    sx = torch.sin(math.pi * torch.linspace(0, 1, w, device=dev)[:, None] * k[None, :])
    sy = torch.sin(math.pi * torch.linspace(0, 1, h, device=dev)[:, None] * k[None, :])
    fields = []
    for side in (w, h):
        c = _normal(gen, cut, cut) * energy
        fields.append(math.sqrt(temperature) * (sy @ c.T @ sx.T) * side)
    return fields[0], fields[1]


def draw_diffeo(gen: torch.Generator, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    cutmax = _randint(gen, DIFFEO_CUTMIN + 1, DIFFEO_CUTMAX)
    cut = int(_beta_half(gen) * (cutmax + 1 - DIFFEO_CUTMIN) + DIFFEO_CUTMIN)
    t1, t2 = temperature_range(max(h, w), cut)
    t2 = max(t1, DIFFEO_ALPHA * t2)
    return displacement(gen, h, w, cut, _beta_half(gen) * (t2 - t1) + t1)


def _source(dx: torch.Tensor, dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each output pixel samples the input (pixel indices, clamped): remap 154-157."""
    h, w = dx.shape
    y, x = torch.meshgrid(torch.arange(h, dtype=dx.dtype, device=dx.device),
                          torch.arange(w, dtype=dx.dtype, device=dx.device), indexing="ij")
    return (x - dx).clamp(0, w - 1), (y - dy).clamp(0, h - 1)


def remap(image: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Bilinear resampling at (x − dx, y − dy) (diffeomorphism.py:144-168)."""
    xn, yn = _source(dx, dy)
    xf, yf, xc, yc = xn.floor().long(), yn.floor().long(), xn.ceil().long(), yn.ceil().long()
    xv, yv = (xn - xf).to(image.dtype), (yn - yf).to(image.dtype)
    return ((1 - yv) * (1 - xv) * image[:, yf, xf] + (1 - yv) * xv * image[:, yf, xc]
            + yv * (1 - xv) * image[:, yc, xf] + yv * xv * image[:, yc, xc])


def remap_boxes(boxes: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Each box (x0, y0, x1, y1) → the pixel cover of the output pixels whose source point
    (pixel centre) lies in it; a box no output pixel samples keeps its coordinates."""
    if not bool((dx != 0).any() or (dy != 0).any()):
        return boxes
    xn, yn = _source(dx, dy)
    xs, ys = xn + 0.5, yn + 0.5
    cols = torch.arange(dx.shape[1], device=dx.device)
    rows = torch.arange(dx.shape[0], device=dx.device)
    out = boxes.clone()
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        inside = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        if not bool(inside.any()):
            continue
        c, r = cols[inside.any(0)], rows[inside.any(1)]
        out[i] = torch.tensor([c.min(), r.min(), c.max() + 1, r.max() + 1], dtype=boxes.dtype)
    return out


# ---- PRIME ------------------------------------------------------------------------------------
def _primitive(image: torch.Tensor, gen: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    """One of the chain's primitives, drawn uniformly (prime.py:75-78), applied to
    ``scale``·image and divided by ``scale`` (module docstring)."""
    x = image * scale if scale != 1.0 else image
    if _randint(gen, 0, 1) == 0:
        out = spectral_filter(x, draw_kernel(gen))
    else:
        out = smooth_color(x, *draw_color(gen, image.shape[0]))
    return out / scale if scale != 1.0 else out


def mix(image: torch.Tensor, chains: list[torch.Tensor], weights: torch.Tensor, m: float
        ) -> torch.Tensor:
    """(1 − m)·x + m·Σ w_i chain_i (prime.py:82-83)."""
    mixed = sum(w * c for w, c in zip(weights.tolist(), chains, strict=True))
    return (1 - m) * image + m * mixed


def prime(image: torch.Tensor, boxes: torch.Tensor, gen: torch.Generator,
          width: int = MIXTURE_WIDTH, max_depth: int = MAX_DEPTH, *,
          variant: str = "imagenet", scale: float = 1.0
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """One PRIME draw for one image and its boxes (see the module docstring): ``variant``
    ``"study"`` has no spatial primitive and chains of exactly one primitive."""
    if variant not in VARIANTS:
        raise ValueError(f"PRIME variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    if variant == "imagenet":
        h, w = image.shape[-2:]
        dx, dy = draw_diffeo(gen, h, w)
        image, boxes = remap(image, dx, dy), remap_boxes(boxes, dx, dy)
    weights = _dirichlet_ones(gen, width)
    m = float(_uniform(gen))
    chains = []
    for _ in range(width):
        x = image
        depth = _randint(gen, 1, max_depth) if variant == "imagenet" else 1
        for _ in range(depth):
            x = _primitive(x, gen, scale)
        chains.append(x)
    return mix(image, chains, weights, m).clamp(0.0, 1.0), boxes
