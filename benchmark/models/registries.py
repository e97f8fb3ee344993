"""The engine and backbone registries, and the built-in names each module registers.

Builders register where they are defined (``engine.py`` and ``backbones/__init__.py`` state
what a builder must be); the declarations below name, for every built-in engine and backbone,
the module whose import registers it, so checking a name (validating a grid) imports no
torch, and ``get`` imports the module on first use. A new built-in builder is one
registration line in its module plus one declaration here (``tests/test_registries.py``
checks that the two agree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from benchmark.registry import Registry

if TYPE_CHECKING:
    from benchmark.models.backbones import Body
    from benchmark.models.engine import EngineBuilder

ENGINES: Registry[EngineBuilder] = Registry("engine")
BACKBONES: Registry[Callable[..., Body]] = Registry("backbone")

_ENGINE_MODULES = {
    "benchmark.models.torchvision_frcnn": ("frcnn_fpn", "frcnn_fpn_small"),
    "benchmark.models.torchvision_mrcnn": ("mrcnn_fpn", "mrcnn_fpn_small"),
    "benchmark.models.detectron2_engine": ("detectron2", "detectron2_small"),
}
#: engines that need a package the suite does not install: their builders carry
#: ``check_available``, which grid validation calls (loading them); the others need nothing
OPTIONAL_ENGINES = ("detectron2", "detectron2_small")

_BACKBONE_MODULES = {
    "benchmark.models.backbones.convnext": ("convnext_tiny", "convnext_base"),
    "benchmark.models.backbones.efficientnet": ("efficientnet_b0", "efficientnet_b2",
                                                "tf_efficientnet_b0", "tf_efficientnet_b2"),
    "benchmark.models.backbones.lite": ("efficientnet_lite0",),
    "benchmark.models.backbones.resnet": ("resnet18", "resnet50", "resnet101",
                                          "resnext50_32x4d", "seresnet50"),
    "benchmark.models.backbones.swin": ("swin_tiny", "swin_small", "swin_base"),
    "benchmark.models.backbones.vit": ("vit_base_patch16",),
}


def _declare(registry: Registry[Any], modules: dict[str, tuple[str, ...]]) -> None:
    for module, names in modules.items():
        for name in names:
            registry.declare(name, module)


_declare(ENGINES, _ENGINE_MODULES)
_declare(BACKBONES, _BACKBONE_MODULES)
