"""Backbones (``BACKBONES``) and detector engines (``ENGINES``).

The package face is lazy (PEP 562). ``ENGINES`` and ``BACKBONES`` come from the torch-free
:mod:`benchmark.models.registries`, which declares every built-in name: checking a name
imports nothing, and ``get`` imports the module that registers it on first use.
``Body``, ``Detector``, ``build_body`` and ``build_detector`` import their (torch) modules
when first asked for; a torch-free submodule (``benchmark.models.geometry``,
``benchmark.models.checkpoints.catalogue``) imports without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmark.models.registries import BACKBONES, ENGINES

__all__ = ["BACKBONES", "ENGINES", "Body", "Detector", "build_body", "build_detector"]

_HOME = {"Body": "backbones", "build_body": "backbones",
         "Detector": "engine", "build_detector": "engine"}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value
