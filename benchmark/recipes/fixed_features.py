"""Fixed features (Yamada & Otani): the backbone's lr multiplier is 0 — only the decoder
trains — except the norm layers' affine parameters, which train as under mmdetection's
``norm_eval``.

What ``norm_eval`` does (open-mmlab/mmdetection@00e97308 ``mmdet/models/backbones/resnet.py``
``ResNet.train``): after ``super().train(mode)`` every ``_BatchNorm`` is put back in eval
mode, so its running statistics stay frozen; it does not touch ``requires_grad``, and the
Mask R-CNN R50-FPN base config trains the BN affine parameters (mmdetection@12b90a81
``configs/_base_/models/mask_rcnn_r50_fpn.py:10-12``: ``frozen_stages=1``,
``norm_cfg=dict(type='BN', requires_grad=True)``, ``norm_eval=True``). Here: every body
tensor is frozen (``requires_grad`` False: no weight decay either) except the weight / bias
of the body's BatchNorm / LayerNorm / GroupNorm layers that the body's own freezing rules
leave trainable (past ``freeze_at``; ConvNeXt's block norms stay frozen as mind_back freezes
them). Running statistics need nothing: bodies hold ``FrozenBatchNorm2d`` (buffers, no affine
*parameters* — so on ResNet / EfficientNet bodies this recipe trains the decoder only, and
the affine parameters that train are those of LayerNorm / GroupNorm bodies such as Swin).
The body is not detached: the gradient reaches the norms.

The 2× schedule is not a recipe parameter: a recipe cannot change the cell's schedule (the
schedule is part of every cell's spec and training fingerprint, shared by the grid's
recipes), so the study's protocol is a grid concern — an experiment with
``schedule.iterations`` doubled (and its lr steps) listing ``fixed_features``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from benchmark.recipes import RECIPES, Recipe

if TYPE_CHECKING:
    from benchmark.models import Detector

NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def norm_affine_ids(body: nn.Module) -> set[int]:
    """ids of the affine parameters of the norm layers in ``body`` (and of any module named
    like a 2-d LayerNorm)."""
    ids: set[int] = set()
    for m in body.modules():
        if isinstance(m, NORMS) or type(m).__name__ in ("LayerNorm2d", "LayerNormChannelsLast"):
            ids.update(id(p) for p in m.parameters(recurse=False))
    return ids


@RECIPES.register("fixed_features")
class FixedFeatures(Recipe):
    PARAMS: dict[str, Any] = {"lr": None, "norm_lr_mult": 1.0}
    #: norm_lr_mult 0 freezes the norms too (strictly fixed features)
    RANGES = {**Recipe.RANGES, "norm_lr_mult": (0.0, float("inf"), True)}

    def configure(self, model: Detector, start_state: dict, importance: dict | None) -> None:
        norms = norm_affine_ids(model.body) if float(self.params["norm_lr_mult"]) > 0 else set()
        for p in model.body.parameters():
            if id(p) not in norms:
                p.requires_grad_(False)

    def param_groups(self, model: Detector, lr: float) -> list[dict[str, Any]]:
        decoder = [p for _, p in model.decoder_parameters()]
        groups = [{"params": decoder, "lr": lr, "name": "decoder"}]
        norms = [p for _, p in model.body_parameters()]  # only the norms' are trainable
        if norms:
            mult = float(self.params["norm_lr_mult"])
            groups.append({"params": norms, "lr": lr * mult, "name": "backbone_norms"})
        return groups
