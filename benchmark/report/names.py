"""Short display names for the leaderboard: "EfficientNet-Lite0 (IN-1k)", "DP-FT".

The registries name things for code (``efficientnet_lite0[imagenet]``,
``dp_ft(dp_lr=0.02,lr=0.01)``); a reader wants the names of the papers. The full spec stays
one footnote away (the "Full specification" block under each family table). Names here are
data tables with a readable fallback, so an unknown backbone or recipe still shows (as its
registry name) and never breaks the report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

RECIPE_NAMES = {"ft": "FT", "dp": "DP", "dp_ft": "DP-FT", "reg_ft": "Reg-FT",
                "wise_ft": "WiSE-FT", "lp": "LP", "lp_ft": "LP-FT",
                "ft_kd": "FT+KD", "cf_kd": "CF-KD", "relevance": "RobustViT",
                "se_dp": "SE-DP", "se_ft": "SE-FT", "fixed_features": "Fixed features",
                "prime_ft": "PRIME-FT"}

# (registry-name pattern, display template with the pattern's groups)
BACKBONE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"resnet(\d+)", "ResNet-{0}"),
    (r"resnext(\d+)_(\w+)", "ResNeXt-{0} {1}"),
    (r"efficientnet_lite(\d)", "EfficientNet-Lite{0}"),
    (r"efficientnet_b(\d)", "EfficientNet-B{0}"),
    (r"convnext_(tiny|small|base|large)", "ConvNeXt-{0}"),
    (r"convnext_([tsbl])", "ConvNeXt-{0}"),
    (r"swin_(tiny|small|base|large|[tsbl])", "Swin-{0}"),
    (r"vit_(tiny|small|base|large|[tsbl])\w*", "ViT-{0}"),
    (r"mobilenet_v(\d)\w*", "MobileNetV{0}"),
)
_SIZES = {"tiny": "T", "small": "S", "base": "B", "large": "L"}

# weights tag (or a word in a catalogue name / file name) → what it was pretrained on
WEIGHTS_WORDS: tuple[tuple[str, str], ...] = (
    (r"^none$|^scratch$|^random$", "scratch"),
    (r"^imagenet$|^in1k$|in1k|imagenet1k", "IN-1k"),
    (r"in22k|22k|imagenet21k|21k", "IN-22k"),
    (r"swsl", "IG SWSL"),
    (r"ssl", "YFCC SSL"),
    (r"augmix", "AugMix"),
    (r"msra|caffe", "MSRA"),
    (r"noisy|_ns|jft", "NS-JFT"),
    (r"robust|madry|_l2_|linf", "adv. robust"),
    (r"clip", "CLIP"),
)


def backbone_name(name: str) -> str:
    for pattern, template in BACKBONE_PATTERNS:
        m = re.fullmatch(pattern, name)
        if m:
            groups = [_SIZES.get(g, g.upper() if len(g) == 1 else g) for g in m.groups()]
            return template.format(*groups)
    return name


def weights_name(weights: str) -> str:
    """What the weights were pretrained on, in a few characters ("" when not given)."""
    if not weights:
        return ""
    w = Path(weights).stem if "/" in weights or weights.endswith((".pth", ".pt")) else weights
    low = w.lower()
    for pattern, label in WEIGHTS_WORDS:
        if re.search(pattern, low):
            return label
    return w if len(w) <= 24 else w[:21] + "…"


def backbone_display(name: str, weights: str) -> str:
    """``"EfficientNet-Lite0 (IN-1k)"``, ``"ResNet-18 (scratch)"``."""
    tag = weights_name(weights)
    return f"{backbone_name(name)} ({tag})" if tag else backbone_name(name)


def recipe_display(name: str) -> str:
    """``"DP-FT"`` for ``dp_ft``; an unknown recipe as its name, upper-cased, ``-`` for ``_``."""
    return RECIPE_NAMES.get(name, name.upper().replace("_", "-"))


CORRUPTION_SHORT = {
    "gaussian_noise": "Gauss", "shot_noise": "Shot", "impulse_noise": "Impulse",
    "defocus_blur": "Defocus", "glass_blur": "Glass", "motion_blur": "Motion", "zoom_blur": "Zoom",
    "snow": "Snow", "frost": "Frost", "fog": "Fog", "brightness": "Bright",
    "contrast": "Contrast", "elastic_transform": "Elastic", "pixelate": "Pixel",
    "jpeg_compression": "JPEG", "speckle_noise": "Speckle", "gaussian_blur": "G-blur",
    "spatter": "Spatter", "saturate": "Saturate",
}


def corruption_short(name: str) -> str:
    return CORRUPTION_SHORT.get(name, name)


def display_names(rows: pd.DataFrame) -> None:
    """``backbone_display`` / ``recipe_display``: short names; where two configurations of one
    backbone share a recipe name, the parameters that differ, then a configuration tag."""
    rows["backbone_display"] = [backbone_display(b, str(w)) for b, w in
                                zip(rows.backbone, rows.weights, strict=True)]
    clash = rows.groupby("backbone_display")["backbone_label"].transform("nunique") > 1
    rows.loc[clash, "backbone_display"] = rows.loc[clash, "backbone_label"]
    names = [recipe_display(r) for r in rows.recipe]
    group = rows.groupby(["engine", "backbone_label", "recipe"])["recipe_params"]
    for _, idx in group.groups.items():
        params = {i: json.loads(rows.at[i, "recipe_params"] or "{}") for i in idx}
        if len({canonical_params(p) for p in params.values()}) < 2:
            continue
        keys = sorted({k for p in params.values() for k in p})
        differ = [k for k in keys if len({repr(p.get(k)) for p in params.values()}) > 1]
        for i, p in params.items():
            pos = rows.index.get_loc(i)
            names[pos] += " (" + ", ".join(f"{k}={p.get(k)}" for k in differ) + ")"
    rows["recipe_display"] = names
    dup = rows.groupby(["engine", "backbone_display", "recipe_display"])["config_key"].transform(
        "nunique")
    rows["recipe_display"] = [f"{r} ‹cfg {ck[:6]}›" if d > 1 else r for r, ck, d in
                              zip(rows.recipe_display, rows.config_key, dup, strict=True)]


def canonical_params(p: Mapping[str, Any]) -> str:
    return json.dumps(p, sort_keys=True, default=str)
