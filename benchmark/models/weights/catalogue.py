"""The weights catalogue: every published checkpoint the suite knows, as one data table.

An entry names a checkpoint file as its publisher ships it: the backbone it loads into
(``architecture``, a name of ``BACKBONES``), the file name the weights folder must hold, its
sha256 (the full digest where it is published or was measured; the hash prefix torch.hub
puts in the file name otherwise; ``None`` when the publisher gives none), the source URL,
the licence, the pixel statistics and channel order the weights expect, the converter that
maps the file onto the architecture's keys (:mod:`benchmark.models.weights.convert`), and
the published rows it stands for (``publication`` keys, matched by
``benchmark.families.PublishedRow.weights``).

To add a checkpoint: one :class:`WeightsEntry` in :data:`CATALOGUE` (its converter must exist;
``tests/test_weights.py`` loads a synthetic file of every converter). Grids then say
``weights: <name>``. Nothing here is ever downloaded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from benchmark.errors import ConfigError


@dataclass(frozen=True)
class PixelStats:
    """What the weights expect as input: mean and std in 0–255 units, in ``channel_order``."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str  # "RGB" | "BGR"

    @property
    def rgb_mean(self) -> tuple[float, float, float]:
        return self.mean if self.channel_order == "RGB" else self.mean[::-1]

    @property
    def rgb_std(self) -> tuple[float, float, float]:
        return self.std if self.channel_order == "RGB" else self.std[::-1]


# mind_back tools/map_backbone.py lines 10–20: ImageNet statistics for every
# checkpoint but the MSRA caffe ones, which expect BGR with detectron2's PIXEL_MEAN and std 1.
# (The study never sets INPUT.FORMAT, so detectron2 fed its RGB-trained models BGR images
# normalised with the RGB-ordered statistics: a defect not copied here.)
IMAGENET_RGB = PixelStats((123.675, 116.28, 103.53), (58.395, 57.12, 57.375), "RGB")
MSRA_BGR = PixelStats((103.53, 116.28, 123.675), (1.0, 1.0, 1.0), "BGR")
# Google's ViT release: mean = std = 0.5 in [0, 1] (hila-chefer/RobustViT@df06c98
# ViT/ViT.py:29-32; timm's IMAGENET_INCEPTION_MEAN / _STD for the same file)
INCEPTION_RGB = PixelStats((127.5, 127.5, 127.5), (127.5, 127.5, 127.5), "RGB")
PIXELS = {"imagenet_rgb": IMAGENET_RGB, "msra_bgr": MSRA_BGR, "inception_rgb": INCEPTION_RGB}


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    architecture: str  # BACKBONES name
    file: str  # file name under $BENCH_WEIGHTS
    url: str
    licence: str
    converter: str  # benchmark.models.weights.convert.CONVERTERS key
    sha256: str | None = None  # full digest or prefix (torch.hub file-name convention)
    pixels: str = "imagenet_rgb"
    publication: tuple[str, ...] = ()  # published-row keys this checkpoint stands for
    description: str = ""
    options: tuple[tuple[str, object], ...] = field(default=())  # architecture variant flags

    @property
    def pixel_stats(self) -> PixelStats:
        return PIXELS[self.pixels]

    def option(self, key: str, default: object = None) -> object:
        return dict(self.options).get(key, default)


TV = "https://download.pytorch.org/models/"
SWSL = "https://dl.fbaipublicfiles.com/semiweaksupervision/model_files/"
TIMM = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/"
TIMM_RA = "https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-rsb-weights/"
FB_CONVNEXT = "https://dl.fbaipublicfiles.com/convnext/"
TIMM_VITJX = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-vitjx/"
FB_DEIT = "https://dl.fbaipublicfiles.com/deit/"
MSRA = "https://dl.fbaipublicfiles.com/detectron/ImageNetPretrained/MSRA/"
SWIN = "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/"
MADRY = "https://huggingface.co/madrylab/robust-imagenet-models/resolve/main/"
BSD3, MIT, APACHE, CC_BY_NC = "BSD-3-Clause", "MIT", "Apache-2.0", "CC-BY-NC-4.0"


def _e(name: str, arch: str, file: str, url: str, licence: str, converter: str,
       sha256: str | None, publication: tuple[str, ...] = (), pixels: str = "imagenet_rgb",
       description: str = "", **options: object) -> WeightsEntry:
    return WeightsEntry(name, arch, file, url, licence, converter, sha256, pixels, publication,
                        description, tuple(sorted(options.items())))


CATALOGUE: tuple[WeightsEntry, ...] = (
    # ---- torchvision (file names carry the sha256 prefix; R50's full digest is measured)
    _e("torchvision_resnet50", "resnet50", "resnet50-0676ba61.pth", TV + "resnet50-0676ba61.pth",
       BSD3, "torchvision",
       "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
       ("torchvision_r50",), description="ResNet-50 IMAGENET1K_V1"),
    _e("torchvision_resnet101", "resnet101", "resnet101-63fe2227.pth",
       TV + "resnet101-63fe2227.pth", BSD3, "torchvision", "63fe2227",
       description="ResNet-101 IMAGENET1K_V1"),
    _e("torchvision_resnet18", "resnet18", "resnet18-f37072fd.pth", TV + "resnet18-f37072fd.pth",
       BSD3, "torchvision", "f37072fd"),
    _e("torchvision_resnext50_32x4d", "resnext50_32x4d", "resnext50_32x4d-7cdf4587.pth",
       TV + "resnext50_32x4d-7cdf4587.pth", BSD3, "torchvision", "7cdf4587"),
    _e("torchvision_convnext_tiny", "convnext_tiny", "convnext_tiny-983f1562.pth",
       TV + "convnext_tiny-983f1562.pth", BSD3, "torchvision_convnext", "983f1562"),
    _e("torchvision_convnext_base", "convnext_base", "convnext_base-6075fbad.pth",
       TV + "convnext_base-6075fbad.pth", BSD3, "torchvision_convnext", "6075fbad"),
    _e("torchvision_efficientnet_b0", "efficientnet_b0", "efficientnet_b0_rwightman-7f5810bc.pth",
       TV + "efficientnet_b0_rwightman-7f5810bc.pth", BSD3, "torchvision_efficientnet",
       "7f5810bc"),
    _e("torchvision_efficientnet_b2", "efficientnet_b2", "efficientnet_b2_rwightman-c35c1473.pth",
       TV + "efficientnet_b2_rwightman-c35c1473.pth", BSD3, "torchvision_efficientnet",
       "c35c1473"),
    # ---- detectron2's MSRA caffe ResNets: BGR, std 1, stride in the 1x1 conv
    _e("msra_resnet50", "resnet50", "R-50.pkl", MSRA + "R-50.pkl", APACHE, "msra_pkl", None,
       ("msra_r50",), "msra_bgr", "MSRA caffe ResNet-50 (detectron2 ImageNetPretrained)",
       stride_in_1x1=True),
    _e("msra_resnet101", "resnet101", "R-101.pkl", MSRA + "R-101.pkl", APACHE, "msra_pkl", None,
       ("msra_r101",), "msra_bgr", "MSRA caffe ResNet-101", stride_in_1x1=True),
    # ---- FB semi-(weakly) supervised (torch.hub layout = torchvision keys)
    _e("swsl_resnet50", "resnet50", "semi_weakly_supervised_resnet50-16a12f1b.pth",
       SWSL + "semi_weakly_supervised_resnet50-16a12f1b.pth", CC_BY_NC, "torchvision",
       "16a12f1b", ("swsl_r50",), description="Instagram-1B semi-weakly supervised ResNet-50"),
    _e("ssl_resnet50", "resnet50", "semi_supervised_resnet50-08389792.pth",
       SWSL + "semi_supervised_resnet50-08389792.pth", CC_BY_NC, "torchvision", "08389792",
       description="YFCC100M semi-supervised ResNet-50"),
    _e("swsl_resnet18", "resnet18", "semi_weakly_supervised_resnet18-118f1556.pth",
       SWSL + "semi_weakly_supervised_resnet18-118f1556.pth", CC_BY_NC, "torchvision",
       "118f1556"),
    _e("swsl_resnext50_32x4d", "resnext50_32x4d",
       "semi_weakly_supervised_resnext50_32x4-72679e44.pth",
       SWSL + "semi_weakly_supervised_resnext50_32x4-72679e44.pth", CC_BY_NC, "torchvision",
       "72679e44"),
    # ---- timm releases
    _e("seresnet50_ra_224", "seresnet50", "seresnet50_ra_224-8efdb4bb.pth",
       TIMM + "seresnet50_ra_224-8efdb4bb.pth", APACHE, "timm", "8efdb4bb"),
    _e("tf_efficientnet_b0_ns", "tf_efficientnet_b0", "tf_efficientnet_b0_ns-c0e6a31c.pth",
       TIMM + "tf_efficientnet_b0_ns-c0e6a31c.pth", APACHE, "timm", "c0e6a31c",
       ("effb0_ns",), description="Noisy Student (JFT-300M) EfficientNet-B0, TF padding"),
    _e("tf_efficientnet_b2_ns", "tf_efficientnet_b2", "tf_efficientnet_b2_ns-00306e48.pth",
       TIMM + "tf_efficientnet_b2_ns-00306e48.pth", APACHE, "timm", "00306e48",
       ("effb2_ns",), description="Noisy Student (JFT-300M) EfficientNet-B2, TF padding"),
    _e("efficientnet_b2_ra", "efficientnet_b2", "efficientnet_b2_ra-bcdf34b7.pth",
       TIMM + "efficientnet_b2_ra-bcdf34b7.pth", APACHE, "timm", "bcdf34b7"),
    # ---- FB ConvNeXt release ({"model": ...}, head.* dropped)
    _e("convnext_base_22k", "convnext_base", "convnext_base_22k_224.pth",
       FB_CONVNEXT + "convnext_base_22k_224.pth", MIT, "fb_convnext", None,
       ("convnext_b_22k",), description="ConvNeXt-B ImageNet-22k"),
    _e("convnext_base_1k", "convnext_base", "convnext_base_1k_224_ema.pth",
       FB_CONVNEXT + "convnext_base_1k_224_ema.pth", MIT, "fb_convnext", None,
       ("convnext_b_1k",), description="ConvNeXt-B ImageNet-1k (EMA)"),
    # ---- Swin (Microsoft release, {"model": ...} in the original layout)
    _e("swin_tiny", "swin_tiny", "swin_tiny_patch4_window7_224.pth",
       SWIN + "swin_tiny_patch4_window7_224.pth", MIT, "msft_swin", None, ("swin_t",)),
    _e("swin_small", "swin_small", "swin_small_patch4_window7_224.pth",
       SWIN + "swin_small_patch4_window7_224.pth", MIT, "msft_swin", None),
    _e("swin_base", "swin_base", "swin_base_patch4_window7_224.pth",
       SWIN + "swin_base_patch4_window7_224.pth", MIT, "msft_swin", None),
    # ---- the ViT-B/16 checkpoints RobustViT fine-tunes (hila-chefer/RobustViT@df06c98
    # imagenet_finetune.py:25 / :34 import them; their URLs: ViT/ViT.py:29-32, 42-43). Both
    # are timm's VisionTransformer layout; DeiT's file is {"model": sd} (ViT.py:307).
    # RobustViT normalises every model with mean = std = 0.5 (segmentation_dataset.py:24-25);
    # DeiT was trained with the ImageNet statistics (timm/models/deit.py:146), given here.
    # (RobustViT's third model, AugReg-B, is a JAX .npz (ViT/ViT_new.py:84-86): not listed.)
    _e("vit_base_patch16_224_in21k_ft_in1k", "vit_base_patch16",
       "jx_vit_base_p16_224-80ecf9dd.pth", TIMM_VITJX + "jx_vit_base_p16_224-80ecf9dd.pth",
       APACHE, "timm_vit", "80ecf9dd", pixels="inception_rgb",
       description="Google ViT-B/16, IN-21k pre-trained, IN-1k fine-tuned (RobustViT's ViT-B)"),
    _e("deit_base_patch16_224", "vit_base_patch16", "deit_base_patch16_224-b5f2ef4d.pth",
       FB_DEIT + "deit_base_patch16_224-b5f2ef4d.pth", APACHE, "timm_vit", "b5f2ef4d",
       description="DeiT-B/16, ImageNet-1k (RobustViT's DeiT-B)"),
    # ---- robust ResNet-50s (Yamada & Otani's list; "module." prefixes)
    _e("augmix_resnet50", "resnet50", "augmix_resnet.pth.tar",  # the study's name (fpn.py:692)
       "https://drive.google.com/file/d/1z-1V3rdFiwqSECz7Wkmn4VJVefJGJGiF", APACHE,
       "module_prefix", None, ("augmix_r50",), description="AugMix ResNet-50 (180 epochs)"),
    _e("deepaugment_resnet50", "resnet50", "deepaugment.pth.tar",
       "https://drive.google.com/file/d/1DPRElQnBG66nd7GUphVm1t-5NroL7t7k", MIT,
       "module_prefix", None),
    _e("deepaugment_augmix_resnet50", "resnet50", "deepaugment_and_augmix.pth.tar",
       "https://drive.google.com/file/d/1QKmc_p6-qDkh51WvsaS9HKFv8bX5jLnP", MIT,
       "module_prefix", None, ("deepaugment_augmix_r50",)),
    _e("ant_resnet50", "resnet50", "ANT3x3_Model.pth",
       "https://github.com/bethgelab/game-of-noise/releases/download/v1.0/ANT3x3_Model.pth",
       MIT, "module_prefix", None, ("ant_r50",)),
    _e("sin_resnet50", "resnet50", "resnet50_train_60_epochs-c8e5653e.pth.tar",
       "https://bitbucket.org/robert_geirhos/texture-vs-shape-pretrained-models/raw/"
       "6f41d2e86fc60566f78de64ecff35cc61eb6436f/resnet50_train_60_epochs-c8e5653e.pth.tar",
       MIT, "module_prefix", "c8e5653e"),
    _e("prime_resnet50", "resnet50", "ResNet50_ImageNet_PRIME_noJSD.ckpt",
       "https://zenodo.org/record/5801872/files/ResNet50_ImageNet_PRIME_noJSD.ckpt", APACHE,
       "module_prefix", None, ("prime_r50",)),
    *(  # madrylab/robust-models-transfer release files (robustness library checkpoints)
        _e(f"adv_l2_eps{eps.replace('.', '_')}_resnet50", "resnet50",
           f"resnet50_l2_eps{eps}.ckpt", MADRY + f"resnet50_l2_eps{eps}.ckpt", MIT,
           "robustness", None, (f"adv_l2_{eps.replace('.', '_')}_r50",),
           description=f"adversarially trained, L2 eps={eps}")
        for eps in ("0.1", "1", "3", "5")
    ),
)

_BY_NAME = {e.name: e for e in CATALOGUE}
assert len(_BY_NAME) == len(CATALOGUE), "duplicate catalogue names"


def entries() -> list[WeightsEntry]:
    """The shipped table plus any entry added with :func:`registered`."""
    return list(_BY_NAME.values())


def names() -> list[str]:
    return list(_BY_NAME)


def lookup(name: str) -> WeightsEntry | None:
    """The entry called ``name``, or None (``name`` is then a path, "imagenet" or "none")."""
    return _BY_NAME.get(name)


def get(name: str) -> WeightsEntry:
    entry = _BY_NAME.get(name)
    if entry is None:
        raise ConfigError(f"unknown weights {name!r} (known: {', '.join(names())})")
    return entry


def by_sha256(digest: str) -> WeightsEntry | None:
    """The entry whose published hash (full or prefix) matches the file digest ``digest``."""
    return next((e for e in _BY_NAME.values() if e.sha256 and digest.startswith(e.sha256)),
                None)


@contextlib.contextmanager
def registered(entry: WeightsEntry) -> Iterator[WeightsEntry]:
    """Add ``entry`` for the duration of the block (tests; a checkpoint tried out before it
    gets its line in :data:`CATALOGUE`)."""
    if entry.name in _BY_NAME:
        raise ValueError(f"weights {entry.name!r} are already in the catalogue")
    _BY_NAME[entry.name] = entry
    try:
        yield entry
    finally:
        _BY_NAME.pop(entry.name, None)


def hash_matches(entry: WeightsEntry, digest: str) -> bool | None:
    """True / False when the entry carries a hash; None when it publishes none."""
    return None if not entry.sha256 else digest.startswith(entry.sha256)


def looks_like_name(value: str) -> bool:
    """A bare identifier (no path separator, no file suffix): meant as a catalogue name."""
    return "/" not in value and "." not in value and value not in ("imagenet", "none")
