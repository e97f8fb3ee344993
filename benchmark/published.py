"""Published reference numbers (from the papers the suite reproduces), each with its source.

Values are stored as fractions like every AP in the suite (the papers print percentages).
A published row *matches* a reproduced one when the benchmark family and recipe are equal and
the reproduced backbone's registry name and weights match the row's :class:`BackboneMatch`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SAITO = ('Saito et al., "Mind the Backbone": Faster R-CNN + FPN, AP@[.5:.95] computed the '
         'VOC way')
SAITO_RGN = 'Saito et al., "Mind the Backbone": mean RGN as their code computes it'
MICHAELIS = ('Michaelis et al., "Benchmarking Robustness in Object Detection": Faster R-CNN '
             'R50-FPN on COCO-C')


@dataclass(frozen=True)
class BackboneMatch:
    """Registry backbone names and a regex over the weights source that denote a backbone."""

    names: tuple[str, ...]
    weights: str = r".*"

    def matches(self, name: str, weights: str) -> bool:
        return name in self.names and re.search(self.weights, weights or "", re.I) is not None


@dataclass(frozen=True)
class PublishedRow:
    family: str
    backbone: str  # as the paper names it
    recipe: str  # the suite's recipe name
    values: dict[str, float]  # column key → fraction (AP) or ratio (rPC)
    source: str
    match: BackboneMatch
    derived: tuple[str, ...] = field(default=())  # keys computed here from published values


@dataclass(frozen=True)
class PublishedRGN:
    backbone: str
    rgn: float
    source: str
    match: BackboneMatch


R50_IG = BackboneMatch(("resnet50",), r"instagram|swsl|(^|[^a-z])ig([^a-z]|$)")
EFFB2_JFT = BackboneMatch(("efficientnet_b2",), r"jft|noisy|(^|[^a-z])ns([^a-z]|$)")
CONVNEXT_B_21K = BackboneMatch(("convnext_base", "convnext_b"), r"21k|22k")
# torchvision's ImageNet-1k checkpoints are named <arch>-<hash>.pth
CONVNEXT_B_1K = BackboneMatch(("convnext_base", "convnext_b"),
                              r"1k|imagenet$|^convnext_base-[0-9a-f]+\.pth$")
MSRA_R50 = BackboneMatch(("resnet50",), r"msra|caffe")
MSRA_R101 = BackboneMatch(("resnet101",), r"msra|caffe")
AUGMIX_R50 = BackboneMatch(("resnet50",), r"augmix")
EFFB0 = BackboneMatch(("efficientnet_b0",), r".*")
TORCHVISION_R50 = BackboneMatch(("resnet50",),
                                r"imagenet|torchvision|msra|caffe|^resnet50-[0-9a-f]+\.pth$")

# Pascal columns: the three OOD domains are matched to splits by these substrings.
PASCAL_DOMAINS = ("clipart", "watercolor", "comic")


def _pascal(backbone: str, recipe: str, comic: float, watercolor: float, clipart: float,
            pascal: float, match: BackboneMatch) -> PublishedRow:
    # in the order of the reproduced table's columns
    values = {"id_ap": pascal / 100, "clipart": clipart / 100, "watercolor": watercolor / 100,
              "comic": comic / 100}
    values["ood_mean"] = (values["comic"] + values["watercolor"] + values["clipart"]) / 3
    values["gap"] = values["id_ap"] - values["ood_mean"]
    return PublishedRow("pascal", backbone, recipe, values, SAITO, match,
                        derived=("ood_mean", "gap"))


PUBLISHED_ROWS: tuple[PublishedRow, ...] = (
    _pascal("ResNet-50 (Instagram SWSL)", "dp", 15.7, 21.2, 15.3, 44.6, R50_IG),
    _pascal("ResNet-50 (Instagram SWSL)", "ft", 7.5, 19.4, 11.4, 50.4, R50_IG),
    _pascal("EfficientNet-B2 (Noisy Student, JFT)", "dp", 12.6, 20.4, 15.1, 40.2, EFFB2_JFT),
    _pascal("EfficientNet-B2 (Noisy Student, JFT)", "ft", 17.1, 27.2, 18.0, 53.4, EFFB2_JFT),
    _pascal("ConvNeXt-B (IN-22k)", "dp", 11.7, 17.3, 14.0, 39.7, CONVNEXT_B_21K),
    _pascal("ConvNeXt-B (IN-22k)", "ft", 11.5, 22.9, 16.8, 60.6, CONVNEXT_B_21K),
    PublishedRow(
        "coco_c", "ResNet-50 (Faster R-CNN R50-FPN)", "ft",
        {"P": 0.363, "mPC": 0.182, "rPC": 0.502}, MICHAELIS, TORCHVISION_R50,
    ),
)

PUBLISHED_RGN: tuple[PublishedRGN, ...] = (
    PublishedRGN("ResNet-50 (Instagram SWSL)", 1.34, SAITO_RGN, R50_IG),
    PublishedRGN("ConvNeXt-B (IN-22k)", 0.13, SAITO_RGN, CONVNEXT_B_21K),
    PublishedRGN("EfficientNet-B2 (Noisy Student, JFT)", 0.06, SAITO_RGN, EFFB2_JFT),
    PublishedRGN("ResNet-50 (MSRA)", 0.299, SAITO_RGN, MSRA_R50),
    PublishedRGN("ResNet-101 (MSRA)", 0.302, SAITO_RGN, MSRA_R101),
    PublishedRGN("ResNet-50 (AugMix)", 0.574, SAITO_RGN, AUGMIX_R50),
    PublishedRGN("ConvNeXt-B (IN-1k)", 0.115, SAITO_RGN, CONVNEXT_B_1K),
    PublishedRGN("EfficientNet-B0", 0.065, SAITO_RGN, EFFB0),
)


def rows_for(family: str) -> list[PublishedRow]:
    return [r for r in PUBLISHED_ROWS if r.family == family]


def rgn_ood_change() -> list[tuple[str, float, float]]:
    """(backbone, published RGN, published OOD-mean change FT − DP) where both are published."""
    out = []
    for g in PUBLISHED_RGN:
        by_recipe = {r.recipe: r for r in PUBLISHED_ROWS if r.family == "pascal"
                     and r.backbone == g.backbone}
        if "ft" in by_recipe and "dp" in by_recipe:
            delta = by_recipe["ft"].values["ood_mean"] - by_recipe["dp"].values["ood_mean"]
            out.append((g.backbone, g.rgn, delta))
    return out
