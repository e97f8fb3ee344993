"""Weight decay of normalisation layers: detectron2's ``SOLVER.WEIGHT_DECAY_NORM``.

detectron2 builds its optimizer with ``get_default_optimizer_params(model,
weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM)`` (facebookresearch/detectron2@02b5c4e2
detectron2/solver/build.py:126): every parameter owned directly by a module of its
``norm_module_types`` (build.py:203-215: BatchNorm1/2/3d, SyncBatchNorm, GroupNorm,
InstanceNorm1/2/3d, LayerNorm, LocalResponseNorm; subclasses included, so timm's
``BatchNormAct2d``) takes that decay (build.py:228-229), with the default 0.0
(config/defaults.py:541). Biases and every other tensor keep ``SOLVER.WEIGHT_DECAY``
(``WEIGHT_DECAY_BIAS`` None, defaults.py:577).
"""

from __future__ import annotations

from typing import Any

from torch import nn

#: detectron2/solver/build.py:203-215
NORM_MODULE_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm,
    nn.LocalResponseNorm,
)


def norm_parameter_ids(model: nn.Module) -> set[int]:
    """``id`` of every parameter owned directly by a normalisation module of ``model``."""
    return {id(p) for m in model.modules() if isinstance(m, NORM_MODULE_TYPES)
            for p in m.parameters(recurse=False)}


def with_norm_decay(model: nn.Module, groups: list[dict[str, Any]],
                    weight_decay_norm: float | None) -> list[dict[str, Any]]:
    """``groups`` with each group's normalisation tensors moved to a group of their own
    (``name`` + ``".norm"``, same keys) whose ``weight_decay`` is ``weight_decay_norm``;
    None leaves ``groups`` as they are (every tensor under the optimizer's decay)."""
    if weight_decay_norm is None:
        return groups
    norms = norm_parameter_ids(model)
    out: list[dict[str, Any]] = []
    for group in groups:
        params = list(group["params"])
        rest = [p for p in params if id(p) not in norms]
        normed = [p for p in params if id(p) in norms]
        if rest or not normed:
            out.append({**group, "params": rest})
        if normed:
            out.append({**group, "params": normed, "weight_decay": float(weight_decay_norm),
                        "name": f"{group.get('name', 'group')}.norm"})
    return out
