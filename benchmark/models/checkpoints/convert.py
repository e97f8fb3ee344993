"""Converters: a checkpoint file as its publisher ships it → the state dict of the network a
backbone builder creates (torchvision or timm key names), and strict matching of the result.

A converter is ``(raw, net) -> state dict`` registered in :data:`CONVERTERS` under the name
the catalogue uses; ``raw`` is what :func:`read_checkpoint` returns for the file. The key
layout each converter expects is stated next to it, with where it comes from. Matching
(:func:`match_state`) lists every missing, unexpected and mis-shaped key by name; a state
that covers less than the whole body is refused unless ``strict`` is False.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.errors import ConfigError
from benchmark.registry import Registry

Converter = Callable[[Any, nn.Module], dict[str, torch.Tensor]]
CONVERTERS: Registry[Converter] = Registry("weights converter")


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts of numpy arrays (detectron2's MSRA ``.pkl``) and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
               ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
               ("numpy._core.multiarray", "_reconstruct"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights .pkl")
        return super().find_class(module, name)


def read_checkpoint(path: Path) -> Any:
    """The object stored in a checkpoint file: a ``.pkl`` is a pickle of numpy arrays (read
    with an unpickler that admits nothing else), anything else a ``torch.save`` file read
    with ``weights_only=True``."""
    try:
        if path.suffix == ".pkl":
            with path.open("rb") as f:
                return _ArraysOnly(f, encoding="latin1").load()
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one error naming it
        raise ConfigError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None


def _unwrap(raw: Any, *keys: str) -> dict[str, Any]:
    """The state dict inside a training checkpoint (first of ``keys`` present)."""
    if isinstance(raw, dict):
        for key in keys:
            if isinstance(raw.get(key), dict):
                return raw[key]
        return raw
    raise ConfigError(f"expected a dict, got {type(raw).__name__}")


def _strip(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


# ---- torchvision / timm / FB semi-weakly supervised: already the network's own keys
@CONVERTERS.register("torchvision")
def torchvision_layout(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """torchvision ``resnet*.pth`` and the FB semi-(weakly) supervised files (torch.hub
    ``facebookresearch/semi-supervised-ImageNet1K-models``: torchvision ResNet keys,
    ``conv1.weight`` … ``fc.bias``)."""
    return dict(_unwrap(raw, "state_dict"))


@CONVERTERS.register("native")
def native_layout(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict saved from the very network the builder creates (e.g. the
    ``efficientnet_lite_pytorch`` keys ``_conv_stem.weight``, ``_blocks.0.*``)."""
    return dict(_unwrap(raw, "state_dict"))


@CONVERTERS.register("timm")
def timm_layout(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """timm release files: the timm model's own keys (``conv_stem.weight``, ``blocks.0.0.*``,
    ``classifier.*`` for EfficientNet; ``conv1``, ``layer1.0.se.fc1`` for SE-ResNet)."""
    return dict(_unwrap(raw, "state_dict"))


# ---- FB ConvNeXt release → timm ConvNeXt
_FB_CONVNEXT = (  # facebookresearch/ConvNeXt models/convnext.py → timm models/convnext.py
    (r"^downsample_layers\.0\.", "stem."),
    (r"^downsample_layers\.(\d)\.", r"stages.\1.downsample."),
    (r"^stages\.(\d)\.(\d+)\.", r"stages.\1.blocks.\2."),
    (r"\.dwconv\.", ".conv_dw."),
    (r"\.pwconv(\d)\.", r".mlp.fc\1."),
)


@CONVERTERS.register("fb_convnext")
def fb_convnext(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """``convnext_base_22k_224.pth`` / ``convnext_base_1k_224_ema.pth``: ``{"model": sd}``
    with facebookresearch/ConvNeXt's names (``downsample_layers.i.j``, ``stages.i.j.dwconv``,
    ``pwconv1/2``, ``gamma``, final ``norm`` and ``head``). The classifier side (``norm.``,
    ``head.``) is dropped; the rest renamed to timm's ConvNeXt."""
    state = _unwrap(raw, "model", "model_ema", "state_dict")
    out = {}
    for key, value in state.items():
        if key.startswith(("head.", "norm.")):
            continue
        for pattern, repl in _FB_CONVNEXT:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


# ---- torchvision ConvNeXt / EfficientNet files → timm
@CONVERTERS.register("torchvision_convnext")
def torchvision_convnext(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """torchvision ``convnext_*-<hash>.pth`` (``torchvision/models/convnext.py``):
    ``features.0.{0,1}`` stem, ``features.{2,4,6}.{0,1}`` downsampling (LN, conv),
    ``features.{1,3,5,7}.j.block.{0,2,3,5}`` (dwconv, LN, fc1, fc2) and ``.layer_scale``
    (C, 1, 1), ``classifier.{0,2}`` → timm's ConvNeXt (``gamma`` is (C,))."""
    out = {}
    for key, value in _unwrap(raw, "state_dict").items():
        if key.startswith("classifier."):
            key = key.replace("classifier.0.", "head.norm.").replace("classifier.2.", "head.fc.")
        elif m := re.match(r"^features\.0\.(.*)$", key):
            key = f"stem.{m.group(1)}"
        elif m := re.match(r"^features\.([246])\.(.*)$", key):
            key = f"stages.{int(m.group(1)) // 2}.downsample.{m.group(2)}"
        elif m := re.match(r"^features\.([1357])\.(\d+)\.(.*)$", key):
            stage, block, rest = int(m.group(1)) // 2, m.group(2), m.group(3)
            if rest == "layer_scale":
                rest, value = "gamma", value.reshape(-1)
            else:
                for tv, tm in (("block.0.", "conv_dw."), ("block.2.", "norm."),
                               ("block.3.", "mlp.fc1."), ("block.5.", "mlp.fc2.")):
                    rest = rest.replace(tv, tm)
            key = f"stages.{stage}.blocks.{block}.{rest}"
        out[key] = value
    return out


_TV_EFFNET_PARTS = {True: ("conv_dw/bn1", "se", "conv_pw/bn2"),  # MBConv1 (expand ratio 1)
                    False: ("conv_pw/bn1", "conv_dw/bn2", "se", "conv_pwl/bn3")}


@CONVERTERS.register("torchvision_efficientnet")
def torchvision_efficientnet(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """torchvision ``efficientnet_b*_rwightman-<hash>.pth`` (``torchvision/models/
    efficientnet.py``): ``features.0.{0,1}`` stem, ``features.s.j.block.k.{0,1}`` (conv, BN)
    and ``block.k.fc{1,2}`` (squeeze-excitation) for stages s = 1–7 (stage 1 has no
    expansion conv), ``features.8`` head conv, ``classifier.1`` → timm's EfficientNet."""
    fixed = {"features.0.0.": "conv_stem.", "features.0.1.": "bn1.", "features.8.0.": "conv_head.",
             "features.8.1.": "bn2.", "classifier.1.": "classifier."}
    out = {}
    for key, value in _unwrap(raw, "state_dict").items():
        prefix = next((p for p in fixed if key.startswith(p)), None)
        if prefix is not None:
            key = fixed[prefix] + key[len(prefix):]
        elif m := re.match(r"^features\.(\d)\.(\d+)\.block\.(\d)\.(.*)$", key):
            stage, block, part, rest = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
            parts = _TV_EFFNET_PARTS[stage == 1]
            name = parts[part] if part < len(parts) else f"block{part}"
            if name == "se":
                rest = rest.replace("fc1.", "se.conv_reduce.").replace("fc2.", "se.conv_expand.")
            else:
                conv, bn = name.split("/")
                rest = re.sub(r"^0\.", f"{conv}.", re.sub(r"^1\.", f"{bn}.", rest))
            key = f"blocks.{stage - 1}.{block}.{rest}"
        out[key] = value
    return out


# ---- Microsoft Swin release → timm Swin
@CONVERTERS.register("msft_swin")
def msft_swin(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """``swin_*_patch4_window7_224.pth``: ``{"model": sd}`` in microsoft/Swin-Transformer's
    layout (``layers.i.downsample`` at the *end* of stage i, ``attn_mask`` and
    ``relative_position_index`` buffers, ``head.weight``); timm's own
    ``swin_transformer.checkpoint_filter_fn`` moves the downsampling to the start of stage
    i + 1 and drops the derived buffers."""
    from timm.models.swin_transformer import checkpoint_filter_fn

    return dict(checkpoint_filter_fn(_unwrap(raw, "model"), net))


# ---- ViT releases in timm's VisionTransformer layout
@CONVERTERS.register("timm_vit")
def timm_vit(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """Google's ViT-B/16 as timm ships it (``jx_vit_base_p16_224-80ecf9dd.pth``, a bare state
    dict) and facebookresearch/deit's ``deit_base_patch16_224-b5f2ef4d.pth`` (``{"model":
    sd}``): ``cls_token``, ``pos_embed``, ``patch_embed.proj.*``,
    ``blocks.i.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``, ``norm.*``, ``head.*``
    — the keys RobustViT's own ``VisionTransformer`` has (hila-chefer/RobustViT@df06c98
    ViT/ViT.py:168-205). timm's ``vision_transformer.checkpoint_filter_fn`` unwraps
    ``"model"``, turns a linear patch embedding into the conv kernel (as RobustViT's
    ``_conv_filter``, ViT.py:240-247) and drops ``pre_logits``; the position embedding
    must already fit the 224-px grid (it is not resampled here: a mismatch is reported)."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    state = dict(_unwrap(raw, "model", "state_dict"))
    pos = state.get("pos_embed")
    own = net.state_dict().get("pos_embed")
    if pos is not None and own is not None and pos.shape != own.shape:
        raise ConfigError(f"pos_embed {tuple(pos.shape)} does not fit this ViT's "
                          f"{tuple(own.shape)} (another input size or patch size)")
    return dict(checkpoint_filter_fn(state, net))


# ---- detectron2 MSRA caffe .pkl → torchvision ResNet
_MSRA_BLOCK = re.compile(r"^res(\d)_(\d+)_branch(1|2[abc])_(w|bn_s|bn_b)$")


@CONVERTERS.register("msra_pkl")
def msra_pkl(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """detectron2 ``ImageNetPretrained/MSRA/R-50.pkl``: a pickled dict (optionally under
    ``"blobs"``) of numpy arrays with Caffe2 names, as detectron2's
    ``checkpoint/c2_model_loading.py`` (``convert_basic_c2_names``) reads them: ``conv1_w``,
    ``res_conv1_bn_s`` / ``_b``, ``res<stage>_<block>_branch2{a,b,c}_w`` / ``_bn_s`` /
    ``_bn_b``, ``res<stage>_<block>_branch1_*`` (projection), ``fc1000_w`` / ``_b``;
    ``*_momentum`` blobs are optimiser state. BatchNorm is affine only (statistics folded
    in): running mean 0 and variance 1, as detectron2's FrozenBatchNorm2d fills them in."""
    blobs = raw.get("blobs", raw) if isinstance(raw, dict) else raw
    if not isinstance(blobs, dict):
        raise ConfigError(f"expected a dict of arrays, got {type(blobs).__name__}")
    out: dict[str, torch.Tensor] = {}

    def bn(prefix: str, kind: str, value: torch.Tensor) -> None:
        out[f"{prefix}.{'weight' if kind == 'bn_s' else 'bias'}"] = value
        out.setdefault(f"{prefix}.running_mean", torch.zeros_like(value))
        out.setdefault(f"{prefix}.running_var", torch.ones_like(value))

    for key, array in blobs.items():
        if key.endswith("_momentum") or key == "model_iter":
            continue
        value = torch.as_tensor(array)
        m = _MSRA_BLOCK.match(key)
        if key == "conv1_w":
            out["conv1.weight"] = value
        elif key in ("res_conv1_bn_s", "res_conv1_bn_b"):
            bn("bn1", key[-4:], value)
        elif key in ("fc1000_w", "fc1000_b"):
            out[f"fc.{'weight' if key.endswith('w') else 'bias'}"] = value
        elif m:
            stage, block, branch, kind = m.groups()
            base = f"layer{int(stage) - 1}.{block}"
            if branch == "1":
                conv, norm = f"{base}.downsample.0", f"{base}.downsample.1"
            else:
                i = "abc".index(branch[1]) + 1
                conv, norm = f"{base}.conv{i}", f"{base}.bn{i}"
            if kind == "w":
                out[f"{conv}.weight"] = value
            else:
                bn(norm, kind, value)
        else:
            out[key] = value  # unknown: reported as unexpected by the matching
    return out


# ---- robust ResNet-50s
@CONVERTERS.register("module_prefix")
def module_prefix(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """DataParallel checkpoints (AugMix ``checkpoint.pth.tar`` and DeepAugment files of
    hendrycks/augmix and hendrycks/imagenet-r: ``{"state_dict": {"module.conv1.weight", …},
    "arch", "optimizer"}``; ANT ``{"model_state_dict": …}`` of bethgelab/game-of-noise; SIN
    ``{"state_dict": …}`` of rgeirhos/texture-vs-shape; PRIME a bare ``module.*`` dict of
    amodas/PRIME-augmentations): torchvision ResNet keys behind ``module.``."""
    return _strip(dict(_unwrap(raw, "state_dict", "model_state_dict")), "module.")


@CONVERTERS.register("robustness")
def robustness(raw: Any, net: nn.Module) -> dict[str, torch.Tensor]:
    """MadryLab robustness-library checkpoints (``imagenet_l2_3_0.ckpt``; ``robustness/
    attacker.py`` ``AttackerModel``): ``{"model": {"module.normalizer.new_mean", …,
    "module.model.conv1.weight", …, "module.attacker.model.conv1.weight", …}, "epoch"}``.
    The ``model.`` copy is kept; the attacker's duplicate and the normaliser buffers (the
    pixel statistics, given by the catalogue instead) are dropped."""
    state = _strip(dict(_unwrap(raw, "model", "state_dict")), "module.")
    own = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    if not own:  # only the attacker's copy
        own = {k[len("attacker.model."):]: v for k, v in state.items()
               if k.startswith("attacker.model.")}
    rest = [k for k in state if not k.startswith(("model.", "attacker.", "normalizer."))]
    return {**own, **{k: state[k] for k in rest}}


# ---- strict matching ----------------------------------------------------------------------
@dataclass(frozen=True)
class MatchReport:
    mapped: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[str, ...]  # "key: checkpoint shape vs network shape"
    ignored: tuple[str, ...]  # classifier keys of the checkpoint, not part of the body

    def problems(self, strict: bool) -> list[str]:
        out = []
        if self.missing and strict:
            out.append(f"missing {len(self.missing)} keys: {', '.join(self.missing[:5])}"
                       + (" …" if len(self.missing) > 5 else ""))
        if self.unexpected:
            out.append(f"unexpected {len(self.unexpected)} keys: "
                       f"{', '.join(self.unexpected[:5])}"
                       + (" …" if len(self.unexpected) > 5 else ""))
        if self.mismatched:
            out.append(f"wrong shape: {', '.join(self.mismatched[:3])}")
        return out


def _skip(key: str, prefixes: Iterable[str]) -> bool:
    return key.endswith("num_batches_tracked") or key.startswith(tuple(prefixes))


def match_state(net: nn.Module, state: dict[str, torch.Tensor], head: tuple[str, ...]
                ) -> MatchReport:
    """Compare a converted state with ``net``'s, ignoring the classifier (``head`` prefixes)
    and BatchNorm's ``num_batches_tracked`` counters."""
    target = {k: v for k, v in net.state_dict().items() if not _skip(k, head)}
    given = {k: v for k, v in state.items() if not _skip(k, head)}
    mismatched = tuple(f"{k}: {tuple(given[k].shape)} vs {tuple(target[k].shape)}"
                       for k in target if k in given and given[k].shape != target[k].shape)
    return MatchReport(
        mapped=tuple(k for k in target if k in given),
        missing=tuple(k for k in target if k not in given),
        unexpected=tuple(k for k in given if k not in target),
        mismatched=mismatched,
        ignored=tuple(k for k in state if k.startswith(tuple(head))),
    )


def load_matched(net: nn.Module, state: dict[str, torch.Tensor], head: tuple[str, ...],
                 strict: bool, what: str) -> MatchReport:
    """Load ``state`` into ``net`` after :func:`match_state`; ConfigError naming ``what`` and
    the first offending keys when it does not fit (missing keys allowed when not strict)."""
    report = match_state(net, state, head)
    problems = report.problems(strict)
    if problems:
        hint = "" if report.unexpected or report.mismatched else \
            " (a partial checkpoint loads with `strict: false` in the grid's backbone)"
        raise ConfigError(f"{what}: {'; '.join(problems)}{hint}")
    keep = {k: state[k] for k in report.mapped}
    with torch.no_grad():
        net.load_state_dict(keep, strict=False)
    return report
