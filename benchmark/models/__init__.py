"""Backbones (``backbones.BACKBONES``) and detector engines (``engine.ENGINES``).

The package face is lazy (PEP 562): ``from benchmark.models import ENGINES`` imports the
modules that register every built-in engine first, while a torch-free submodule
(``benchmark.models.geometry``, ``benchmark.models.checkpoints.catalogue``) imports without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BACKBONES", "ENGINES", "Body", "Detector", "build_body", "build_detector"]

_HOME = {"BACKBONES": "backbones", "Body": "backbones", "build_body": "backbones",
         "ENGINES": "engine", "Detector": "engine", "build_detector": "engine"}
#: the modules that register engines, imported before any name of the face is handed out
_REGISTERING = ("torchvision_frcnn", "torchvision_mrcnn", "detectron2_engine")


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module in _REGISTERING:
        importlib.import_module(f"{__name__}.{module}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value
