"""Relative Gradient Norm (Saito et al., "Mind the Backbone"), both definitions.

``rgn`` — as the published code computes it: for every trainable backbone tensor W with
gradient G, accumulate ``|G| / (|W| + 1e-8)`` element-wise over the batches (for 4-D conv
kernels |G| and |W| are first summed over the two spatial dims), divide by the number of
batches; per tensor the mean of that map; model level the unweighted mean over tensors.

``rgn_l2`` — as the paper's prose describes it: per tensor ``‖G‖₂ / ‖W‖₂`` per batch,
averaged over batches; model level the unweighted mean over tensors.

Which tensors the model-level numbers average is the study's too: mind_back's
``tools/compute_rgn.py`` (VisionLearningGroup/mind_back@5e6694f, line 57) keeps a backbone
tensor only when ``'se_module' not in name and 'se.' not in name``, so every tensor of a
squeeze-and-excitation module named ``se`` — timm's EfficientNet blocks
(``blocks.1.0.se.conv_reduce.weight``; ``self.se = se_layer(...)``,
huggingface/pytorch-image-models@aa4b585 timm/models/_efficientnet_blocks.py:206, 311) and
SE-ResNet's ``layer1.0.se.fc1`` — is left out of the reported RGN (:func:`in_study_rgn`).
Among timm's other module attributes the substring also matches ``pwise`` (cpubone.py:322),
``pointwise`` (xception.py:62) and ``base`` (layers/test_time_pool.py:19, a wrapped model);
none is in a body of this suite, where it matches SE tensors only (tested). The importance
maps a regulariser weights its pull with keep every tensor, as the study's regulariser does
(``tools/utils.py:67-79`` measures every ``bottom_up`` tensor, SE convs included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

EPS = 1e-8
#: substrings of a tensor name that put it outside the study's RGN (compute_rgn.py:57)
STUDY_EXCLUDED = ("se_module", "se.")


def in_study_rgn(name: str) -> bool:
    """Whether mind_back's RGN measures the tensor ``name`` (its substring test, applied to
    the body-relative names, which keep timm's module names)."""
    return not any(s in name for s in STUDY_EXCLUDED)


def _abs_reduced(t: torch.Tensor) -> torch.Tensor:
    a = t.detach().abs().double()
    return a.sum(dim=(2, 3)) if a.dim() == 4 else a


class RGNAccumulator:
    """Accumulates both RGN definitions over batches for a fixed set of named tensors."""

    def __init__(self) -> None:
        self.maps: dict[str, torch.Tensor] = {}
        self.abs_grad: dict[str, torch.Tensor] = {}  # element-wise Σ|G| (EWC-like importance)
        self.l2: dict[str, float] = {}
        self.n_batches = 0

    def add_batch(self, named: Iterable[tuple[str, torch.Tensor, torch.Tensor]]) -> None:
        """``named`` yields (name, W, G) after one backward pass."""
        for name, w, g in named:
            ratio = _abs_reduced(g) / (_abs_reduced(w) + EPS)
            self.maps[name] = self.maps[name] + ratio if name in self.maps else ratio
            a = g.detach().abs().double()
            self.abs_grad[name] = self.abs_grad[name] + a if name in self.abs_grad else a
            l2 = float(g.detach().double().norm() / (w.detach().double().norm() + EPS))
            self.l2[name] = self.l2.get(name, 0.0) + l2
        self.n_batches += 1

    def importance(self) -> dict[str, dict[str, torch.Tensor]]:
        """Per-tensor maps averaged over batches: ``rgn`` (per (out, in) pair for conv
        kernels) and ``ewc`` (mean |G|, element-wise), as float32."""
        n = max(self.n_batches, 1)
        return {
            "rgn": {k: (v / n).float() for k, v in self.maps.items()},
            "ewc": {k: (v / n).float() for k, v in self.abs_grad.items()},
        }

    def result(self, include: Callable[[str], bool] = in_study_rgn) -> dict[str, Any]:
        """Model-level RGN over the measured tensors ``include`` accepts (default: those the
        study's RGN measures); ``per_tensor`` lists those, ``excluded`` (present only when
        some were left out) names the others."""
        names = [name for name in self.maps if include(name)]
        excluded = [name for name in self.maps if not include(name)]
        extra = {"excluded": excluded} if excluded else {}
        if self.n_batches == 0 or not names:
            return {"rgn": None, "rgn_l2": None, "n_batches": self.n_batches, "per_tensor": {},
                    **extra}
        n = self.n_batches
        per_tensor = {
            name: {"rgn": float((self.maps[name] / n).mean()), "rgn_l2": self.l2[name] / n}
            for name in names
        }
        return {
            "rgn": sum(t["rgn"] for t in per_tensor.values()) / len(per_tensor),
            "rgn_l2": sum(t["rgn_l2"] for t in per_tensor.values()) / len(per_tensor),
            "n_batches": n,
            "per_tensor": per_tensor,
            **extra,
        }


def measure_rgn(
    loss_fn: Callable[[Any], torch.Tensor],
    params: list[tuple[str, torch.nn.Parameter]],
    batches: Iterable[Any],
) -> RGNAccumulator:
    """Backward ``loss_fn(batch)`` per batch and accumulate RGN over ``params``
    (``.result()`` for the numbers, ``.importance()`` for the maps).

    Gradients of ``params`` are zeroed before each batch; nothing is updated.
    Tensors that receive no gradient are left out (they would not train either).
    """
    acc = RGNAccumulator()
    for batch in batches:
        for _, p in params:
            p.grad = None
        loss_fn(batch).backward()
        acc.add_batch((n, p, p.grad) for n, p in params if p.grad is not None)
    for _, p in params:
        p.grad = None
    return acc
