"""The detector-engine contract and its registry.

An engine turns a grid cell into a trainable detector. It is registered under the name grids
use (``engine:``) as a **builder**::

    @ENGINES.register("my_engine")
    def build(spec: RunSpec, num_classes: int) -> Detector: ...

``spec`` gives the backbone (``spec.backbone``) and the input sizes (``spec.schedule``);
``num_classes`` counts the object classes (no background). The builder carries a ``card``
attribute, ``card(spec) -> (detector fields, input fields)``: the values of
:class:`benchmark.protocol_card.DetectorCard` and :class:`benchmark.protocol_card.InputCard` for the
detector it builds for ``spec``, so a run's protocol card states what defines the detector,
never just the engine's name (:func:`engine_card`). The returned :class:`Detector`
meets the contract below, which is all the training loop, the recipes, RGN and evaluation
use — so a second engine (detectron2, …) is one module implementing it plus one
registration line (and its declaration in :mod:`benchmark.models.registries`), and nothing
else in the suite changes.

Conventions of the contract:

- images are float tensors (C, H, W) in [0, 1], RGB, at their stored size;
- targets and predictions use **0-based class indices** (0 … num_classes − 1) and boxes
  (x0, y0, x1, y1) in the coordinates of the image as given (an engine with a background
  class shifts internally);
- the *body* is the backbone's feature extractor (``self.body``, a :class:`Body`); the
  *decoder* is everything after it (FPN, RPN, RoI heads). Parameter names of the body are
  relative to the body, so recipes anchor them without knowing the engine's module tree.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from benchmark.models.backbones import Body
from benchmark.models.registries import ENGINES

if TYPE_CHECKING:
    from benchmark.spec import RunSpec

#: images and targets, as a detector's ``losses`` takes them (0-based labels)
Batch = tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]


class Detector(nn.Module, abc.ABC):
    """What every engine's detector provides (see the module docstring for conventions)."""

    body: Body
    #: True for an instance-segmentation engine: the training targets carry ``masks``
    #: (N, H, W) uint8, one per box, in image coordinates, and :meth:`predict` returns them
    needs_masks: bool = False

    @abc.abstractmethod
    def train_module(self) -> nn.Module:
        """The module whose ``forward(images, targets)`` returns the loss dict in train mode:
        what DDP wraps. :meth:`prepare_train` must be called before each forward."""

    @abc.abstractmethod
    def prepare_train(self) -> None:
        """Put the detector in train mode, with its train-time input sizes."""

    @abc.abstractmethod
    def predict(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Eval-mode detections per image: ``boxes`` (N, 4) x0y0x1y1 in image coordinates,
        ``labels`` (N,) 0-based class indices, ``scores`` (N,); with :attr:`needs_masks`
        also ``masks`` (N, H, W): per-pixel probabilities in [0, 1] (or binary) in image
        coordinates, which the evaluation binarises at 0.5."""

    @abc.abstractmethod
    def set_detach_body(self, detach: bool) -> None:
        """Decoder probing: when set, the body's outputs are detached (no gradient reaches
        the body)."""

    @abc.abstractmethod
    def body_state_prefix(self) -> str:
        """The prefix of the body's tensors in :meth:`state_dict` (``body_state`` uses it)."""

    # ---- derived: engines need not override these -------------------------------------------
    def losses(
        self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Train-mode losses on a batch (targets: ``boxes``, 0-based ``labels``)."""
        self.prepare_train()
        return self.train_module()(images, targets)

    def body_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Trainable backbone tensors (frozen stages excluded), named relative to the body."""
        return [(n, p) for n, p in self.body.named_parameters() if p.requires_grad]

    def decoder_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Trainable tensors outside the body."""
        body_ids = {id(p) for p in self.body.parameters()}
        return [
            (n, p) for n, p in self.named_parameters() if p.requires_grad and id(p) not in body_ids
        ]

    def body_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The body's tensors of a full state dict of this detector, named relative to the
        body (as :meth:`body_parameters` names them)."""
        prefix = self.body_state_prefix()
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


EngineBuilder = Callable[["RunSpec", int], Detector]


def engine_needs_masks(name: str) -> bool:
    """Whether engine ``name`` trains on instance masks (its builder carries
    ``needs_masks = True``, as its detector's :attr:`Detector.needs_masks`): known before
    the detector is built, so the data can be prepared for it."""
    return bool(getattr(ENGINES.get(name), "needs_masks", False))


def engine_card(spec: RunSpec) -> tuple[dict[str, str], dict[str, str]] | None:
    """(detector fields, input fields) of the detector ``spec.engine`` builds for ``spec``
    (the builder's ``card``, see the module docstring); None for an engine without one."""
    card = getattr(ENGINES.get(spec.engine), "card", None)
    return None if card is None else card(spec)


def build_detector(spec: RunSpec, num_classes: int) -> Detector:
    """The detector of ``spec.engine`` for ``num_classes`` object classes."""
    return ENGINES.get(spec.engine)(spec, num_classes)
