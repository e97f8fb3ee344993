"""ConvNeXt-T/B (timm's ConvNeXt: the FB release converts onto it key by key, see
``weights/convert.py``; torchvision's ConvNeXt is not used because no published checkpoint
of the studies is in its layout).

Freeze rule of mind_back (VisionLearningGroup/mind_back@5e6694f)
``src/modeling/backbone/fpn.py`` lines 796–802 (``build_convnext_fpn_backbone``): the stem
(``downsample_layers[0]``) and ``stages[0]`` are frozen, and every parameter whose name
contains "norm" — in the FB layout that is the LayerNorm inside each block, *not*
the three downsampling LayerNorms (``downsample_layers.i.0``), which stay trainable. In
timm's names the block norms are ``stages.i.blocks.j.norm`` and the downsampling ones
``stages.i.downsample.0``, so the rule is ``".norm." in name``. Drop-path 0 as the study
forces it (``src/modeling/backbone/ convnext.py`` line 155). The study's FPN on ConvNeXt
uses GroupNorm (``tools/map_backbone.py`` line 32): an engine matter, not the body's.
"""

from __future__ import annotations

from benchmark.models.backbones._base import (
    BACKBONES,
    Body,
    imagenet_is_not_packaged,
    load_source,
    resolve_source,
)
from benchmark.models.checkpoints.catalogue import IMAGENET_RGB

HEAD = ("head.",)


def block_norm(name: str) -> bool:
    """mind_back's "norm" in the FB parameter name, spelled for timm's names."""
    return ".norm." in name


def _convnext(arch: str, timm_name: str, weights: str, strict: bool = True,
              drop_path: float = 0.0) -> Body:
    import timm

    if weights == "imagenet":
        raise imagenet_is_not_packaged(arch, "https://dl.fbaipublicfiles.com/convnext/")
    src = None if weights == "none" else resolve_source(weights, arch)
    net = timm.create_model(timm_name, pretrained=False, drop_path_rate=drop_path)
    report = None if src is None else load_source(net, src, "timm", HEAD, strict)
    stages = [net.stem, *net.stages]
    dims = [s.blocks[-1].mlp.fc2.out_features for s in net.stages]
    body = Body(stages, dims[1:], default_freeze_at=2, freeze_norms=block_norm,
                level_channels=dims, pixels=src.pixels if src else IMAGENET_RGB)
    body.weights_report = report
    # "For stability of training, we use GN for convnext": mind_back's FPN on ConvNeXt has
    # GroupNorm(32) after every lateral and output conv, which lose their bias
    # (VisionLearningGroup/mind_back@5e6694f, tools/map_backbone.py lines 31-35;
    # src/modeling/backbone/fpn.py lines 108-123)
    body.fpn_norm = "GN"
    return body


for _arch, _timm in (("convnext_tiny", "convnext_tiny"), ("convnext_base", "convnext_base")):
    BACKBONES.register(_arch)(lambda w, _a=_arch, _t=_timm, **kw: _convnext(_a, _t, w, **kw))
