"""Backbones (``backbones.BACKBONES``) and detector engines (``engine.ENGINES``).

The registries are imported first, then the modules that register implementations, so
``from benchmark.models import ENGINES`` always sees every built-in engine.
"""

from benchmark.models import torchvision_frcnn  # noqa: E402,F401,I001  (registers engines)
from benchmark.models import torchvision_mrcnn  # noqa: E402,F401,I001  (registers engines)
from benchmark.models import detectron2_engine  # noqa: E402,F401,I001  (imports detectron2 lazily)
from benchmark.models.backbones import BACKBONES, Body, build_body
from benchmark.models.engine import ENGINES, Detector, build_detector

__all__ = ["BACKBONES", "ENGINES", "Body", "Detector", "build_body", "build_detector"]
