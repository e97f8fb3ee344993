"""Fixed features (Yamada & Otani): the backbone's lr multiplier is 0 — only the decoder
trains.

The study's fixed-feature configs give every backbone parameter lr 0, norms included
(runopti/RobustDownstreamTransfer@a67aae8 ``mmdetection/configs/mask_rcnn/
mask_rcnn_r50_fpn_2x_lr0.04_coco_fixedfeature.py:8-14``: ``paramwise_cfg=dict(custom_keys=
{'backbone': dict(lr_mult=0.0, decay_mult=0.0)})``, and likewise the ANT and DeepAugment
configs, lines 7-13). Here: every body tensor is frozen (``requires_grad`` False: no weight
decay either). The body is neither detached nor put in eval mode: as in mmdetection, it runs
its training-mode forward (Swin's stochastic depth stays on) and its BatchNorm statistics
stay as the body keeps them (``norm_eval``: frozen).

Parameters:

- ``norm_lr_mult`` (default 0): > 0 trains the weight / bias of the body's BatchNorm /
  LayerNorm / GroupNorm layers that the body's own freezing rules leave trainable (past
  ``freeze_at``; ConvNeXt's block norms stay frozen as mind_back freezes them) at that
  multiple of the lr — the suite's earlier fixed-features recipe (1.0). ``FrozenBatchNorm2d``
  holds no affine *parameters*, so on ResNet / EfficientNet bodies it trains nothing more
  unless the backbone is built with ``norm: eval_affine``.
- ``train_keys`` (default ""): comma-separated substrings of body tensor names that train at
  the decoder's lr despite the freeze. The study's Swin-T fixed-feature config needs it:
  its ``custom_keys`` are ``relative_position_bias_table`` / ``norm`` / ``absolute_pos_embed``
  (decay 0) and ``backbone`` (lr 0) (``configs/swin/
  mask_rcnn_swin-t-p4-w7_fpn_ms-crop-2x_coco_fixedfeature.py:84-90``), and mmcv applies the
  *longest* matching key only (open-mmlab/mmcv@f4167fe1 ``mmcv/runner/optimizer/
  default_constructor.py:164,190-199``): ``backbone.…attn.w_msa.relative_position_bias_table``
  matches ``relative_position_bias_table`` before ``backbone``, so the 12 relative-position
  bias tables train at the full lr (the norms match ``backbone`` first: lr 0).

The 2× schedule is not a recipe parameter: a recipe cannot change the cell's schedule (the
schedule is part of every cell's spec and training fingerprint, shared by the grid's
recipes), so the study's protocol is a grid concern (benchmark/grids/robust_transfer_coco.yaml).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmark.recipes.base import RECIPES, Recipe

if TYPE_CHECKING:
    from torch import nn

    from benchmark.models import Detector

#: norm modules recognised by name (2-d LayerNorms, the BatchNorm of ``norm: eval_affine``)
NORM_NAMES = ("LayerNorm2d", "LayerNormChannelsLast", "EvalAffineBatchNorm2d")


def norm_affine_ids(body: nn.Module) -> set[int]:
    """ids of the affine parameters of the norm layers in ``body``."""
    from torch import nn

    norms = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
    ids: set[int] = set()
    for m in body.modules():
        if isinstance(m, norms) or type(m).__name__ in NORM_NAMES:
            ids.update(id(p) for p in m.parameters(recurse=False))
    return ids


def keyed_ids(body: nn.Module, keys: str) -> set[int]:
    """ids of the body tensors whose name contains one of the comma-separated ``keys``."""
    wanted = [k.strip() for k in keys.split(",") if k.strip()]
    return {id(p) for n, p in body.named_parameters() if any(k in n for k in wanted)}


@RECIPES.register("fixed_features")
class FixedFeatures(Recipe):
    PARAMS: dict[str, Any] = {"lr": None, "norm_lr_mult": 0.0, "train_keys": "",
                              "optimizer": "sgd"}
    #: norm_lr_mult > 0 trains the norms' affine parameters (the earlier default, 1.0)
    RANGES = {**Recipe.RANGES, "norm_lr_mult": (0.0, float("inf"), True)}

    def configure(self, model: Detector, start_state: dict, importance: dict | None) -> None:
        body = model.body
        self.keyed = keyed_ids(body, str(self.params["train_keys"]))
        norms = norm_affine_ids(body) if float(self.params["norm_lr_mult"]) > 0 else set()
        trainable = {id(p) for p in body.parameters() if p.requires_grad}
        self.keyed &= trainable  # the body's frozen stages stay frozen
        for p in body.parameters():
            if id(p) not in norms | self.keyed:
                p.requires_grad_(False)

    def param_groups(self, model: Detector, lr: float) -> list[dict[str, Any]]:
        decoder = [p for _, p in model.decoder_parameters()]
        groups = [{"params": decoder, "lr": lr, "name": "decoder"}]
        keyed = getattr(self, "keyed", set())
        body = [p for _, p in model.body_parameters()]  # the trainable ones only
        keys = [p for p in body if id(p) in keyed]
        norms = [p for p in body if id(p) not in keyed]
        if keys:
            # mmcv custom_keys: lr_mult 1, decay_mult 0 (the Swin config's keys)
            groups.append({"params": keys, "lr": lr, "weight_decay": 0.0,
                           "name": "backbone_keys"})
        if norms:
            mult = float(self.params["norm_lr_mult"])
            groups.append({"params": norms, "lr": lr * mult, "name": "backbone_norms"})
        return groups
