"""Structure-only weights: for a catalogue entry whose file is absent, a file with the
entry's architecture, written in the layout its converter reads (the publisher's key names
and container), with random values. It is registered as a catalogue entry of its own that
keeps the real entry's architecture, converter, pixel statistics and options, so the body
loads it through the real converter, strict key matching and freeze rule.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from benchmark.models.checkpoints.catalogue import WeightsEntry
from benchmark.store import atomic_write_bytes, sha256_file

#: prefix of a stand-in entry's name (``standin_<real name>``)
PREFIX = "standin_"


def _torchvision(arch: str) -> dict[str, torch.Tensor]:
    import torchvision.models as tvm

    from benchmark.models.backbones.resnet import TORCHVISION

    ctor = TORCHVISION[arch][0] if arch in TORCHVISION else arch  # convnext_*, efficientnet_*
    return getattr(tvm, ctor)(weights=None).state_dict()


def _timm(arch: str) -> dict[str, torch.Tensor]:
    import timm

    from benchmark.models.backbones.swin import TIMM as SWIN

    name = {"vit_base_patch16": "vit_base_patch16_224", **SWIN}.get(arch, arch)
    return timm.create_model(name, pretrained=False).state_dict()


def _fb_convnext(arch: str) -> Any:
    """timm's ConvNeXt keys back to facebookresearch/ConvNeXt's (``downsample_layers``,
    ``stages.i.j.dwconv/pwconv``), ``{"model": sd}``."""
    fb = {}
    for k, v in _timm(arch).items():
        k = re.sub(r"^stem\.", "downsample_layers.0.", k)
        k = re.sub(r"^stages\.(\d)\.downsample\.", r"downsample_layers.\1.", k)
        k = re.sub(r"^stages\.(\d)\.blocks\.(\d+)\.", r"stages.\1.\2.", k)
        k = k.replace(".conv_dw.", ".dwconv.").replace(".mlp.fc", ".pwconv")
        k = k.replace("head.norm.", "norm.").replace("head.fc.", "head.")
        fb[k] = v
    return {"model": fb}


def _msft_swin(arch: str) -> Any:
    """timm's Swin keys back to microsoft/Swin-Transformer's: the downsampling at the end of
    the stage before, ``relative_position_index`` buffers, ``head.*``; ``{"model": sd}``."""
    ms = {}
    for k, v in _timm(arch).items():
        m = re.match(r"^layers\.(\d)\.downsample\.(.*)$", k)
        if m:
            k = f"layers.{int(m.group(1)) - 1}.downsample.{m.group(2)}"
        ms[k.replace("head.fc.", "head.")] = v
        if k.endswith("attn.relative_position_bias_table"):
            n = int(round(v.shape[0] ** 0.5) + 1) // 2  # (2w - 1)² entries: window w
            ms[k.replace("bias_table", "index")] = torch.zeros(n * n, n * n, dtype=torch.long)
    return {"model": ms}


def _msra_pkl(arch: str) -> Any:
    """torchvision ResNet keys as detectron2's Caffe2 blob names (``res<s>_<b>_branch2a_w``,
    ``_bn_s`` / ``_bn_b``; statistics folded in), numpy arrays under ``"blobs"``."""
    ref = _torchvision(arch)
    blobs = {"conv1_w": ref["conv1.weight"], "res_conv1_bn_s": ref["bn1.weight"],
             "res_conv1_bn_b": ref["bn1.bias"], "fc1000_w": ref["fc.weight"],
             "fc1000_b": ref["fc.bias"]}
    for key, value in ref.items():
        m = re.match(r"^layer(\d)\.(\d+)\.(conv|bn)(\d)\.(weight|bias)$", key)
        d = re.match(r"^layer(\d)\.(\d+)\.downsample\.(0|1)\.(weight|bias)$", key)
        if m:
            stage, block, what, i, p = m.groups()
            base = f"res{int(stage) + 1}_{block}_branch2{'abc'[int(i) - 1]}"
        elif d:
            stage, block, i, p = d.groups()
            base, what = f"res{int(stage) + 1}_{block}_branch1", "conv" if i == "0" else "bn"
        else:
            continue
        suffix = "_w" if what == "conv" else ("_bn_s" if p == "weight" else "_bn_b")
        blobs[base + suffix] = value
    return {"blobs": {k: v.numpy() for k, v in blobs.items()}}


def _module_prefix(arch: str) -> Any:
    return {"epoch": 0, "arch": arch,
            "state_dict": {f"module.{k}": v for k, v in _torchvision(arch).items()}}


def _robustness(arch: str) -> Any:
    sd = _torchvision(arch)
    state = {"module.normalizer.new_mean": torch.zeros(3, 1, 1),
             "module.normalizer.new_std": torch.ones(3, 1, 1)}
    for k, v in sd.items():
        state[f"module.model.{k}"] = v
        state[f"module.attacker.model.{k}"] = v
    return {"model": state, "epoch": 0}


def _native(arch: str) -> Any:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name(arch.replace("_", "-")).state_dict()


#: converter → the publisher's file content for an architecture (random values)
LAYOUTS: dict[str, Callable[[str], Any]] = {
    "torchvision": _torchvision,
    "torchvision_convnext": _torchvision,
    "torchvision_efficientnet": _torchvision,
    "timm": _timm,
    "timm_vit": _timm,
    "fb_convnext": _fb_convnext,
    "msft_swin": _msft_swin,
    "msra_pkl": _msra_pkl,
    "module_prefix": _module_prefix,
    "robustness": _robustness,
    "native": _native,
}


def standin_entry(entry: WeightsEntry, folder: Path) -> WeightsEntry:
    """Write (once) the structure-only file of ``entry`` under ``folder`` and return the
    catalogue entry that names it: the real entry's architecture, converter, pixel
    statistics and options; the file's own hash."""
    path = folder / entry.file
    if not path.is_file():
        if entry.converter not in LAYOUTS:
            raise KeyError(f"no structure-only layout for converter {entry.converter!r}")
        torch.manual_seed(0)
        content = LAYOUTS[entry.converter](entry.architecture)
        if entry.converter == "timm_vit" and entry.name.startswith("deit"):
            content = {"model": content}  # facebookresearch/deit ships {"model": sd}
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".pkl":
            data = pickle.dumps(content, protocol=2)
        else:
            import io

            buf = io.BytesIO()
            torch.save(content, buf)
            data = buf.getvalue()
        atomic_write_bytes(path, data)
    return replace(entry, name=PREFIX + entry.name, file=str(path.resolve()),
                   sha256=sha256_file(path), publication=(),
                   description=f"structure-only stand-in of {entry.name} (random values)")
