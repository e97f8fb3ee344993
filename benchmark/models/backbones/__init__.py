"""Backbone registry: name → builder of a multi-scale feature extractor (:class:`Body`).

A builder takes the weights source — a catalogue name (``benchmark.models.checkpoints.catalogue``),
``"imagenet"`` (a checkpoint shipped by an installed package, where one exists), ``"none"``
(random initialisation) or a file path — and the keywords ``strict`` (refuse a checkpoint
that covers less than the body; default True) and ``drop_path`` (stochastic depth; default
0, as the studies fine-tune), and returns a :class:`Body`: an ordered list of stages whose
last four produce strides 4, 8, 16, 32 (P2–P5, :meth:`Body.levels`), whose first
``freeze_at`` stages can be frozen as detectron2's FREEZE_AT does, and which carries the
pixel statistics and channel order its weights expect. One module per family
(``resnet``, ``convnext``, ``efficientnet``, ``swin``, ``vit``, ``lite``); to add a
backbone, write a builder, decorate it with ``@BACKBONES.register("name")`` and declare its
name in :mod:`benchmark.models.registries`.
"""

from benchmark.models.backbones._base import (  # noqa: I001  (registry first)
    BACKBONES,
    LEVEL_STRIDES,
    OUT_STRIDES,
    Body,
    build_body,
    freeze_batchnorm,
    resolve_source,
)
from benchmark.models.backbones import convnext, efficientnet, lite, resnet, swin, vit  # noqa: F401

__all__ = ["BACKBONES", "LEVEL_STRIDES", "OUT_STRIDES", "Body", "build_body", "freeze_batchnorm",
           "resolve_source"]
