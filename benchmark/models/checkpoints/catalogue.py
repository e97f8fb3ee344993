"""The weights catalogue: every published checkpoint the suite knows, as one data table.

An entry names a checkpoint file as its publisher ships it: the backbone it loads into
(``architecture``, a name of ``BACKBONES``), the file name the weights folder must hold, its
sha256 (the full digest where it is published or was measured; the hash prefix torch.hub
puts in the file name otherwise; ``None`` when the publisher gives none), the source URL,
the licence, the pixel statistics and channel order the weights expect, the converter that
maps the file onto the architecture's keys (:mod:`benchmark.models.checkpoints.convert`), and
the published rows it stands for (``publication`` keys, matched by
``benchmark.families.PublishedRow.weights``).

To add a checkpoint: one :class:`WeightsEntry` in :data:`CATALOGUE` (its converter must exist;
``tests/test_weights.py`` loads a synthetic file of every converter). Grids then say
``weights: <name>``. Nothing here is ever downloaded. :func:`weights_path` names the file a
``weights`` value stands for, :func:`file_sha256` hashes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import ConfigError
from benchmark.store import sha256_file, weights_root


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


@dataclass(frozen=True, kw_only=True)
class WeightsEntry:
    """One checkpoint (keyword arguments only, as timm's ``default_cfgs``)."""

    name: str
    architecture: str  # BACKBONES name
    file: str  # file name under $BENCH_WEIGHTS
    url: str
    licence: str
    converter: str  # benchmark.models.checkpoints.convert.CONVERTERS key
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


CATALOGUE: tuple[WeightsEntry, ...] = (
    # ---- torchvision (file names carry the sha256 prefix; R50's full digest is measured)
    WeightsEntry(name="torchvision_resnet50", architecture="resnet50",
                 file="resnet50-0676ba61.pth", url=TV + "resnet50-0676ba61.pth", licence=BSD3,
                 converter="torchvision",
                 sha256="0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
                 publication=("torchvision_r50",), description="ResNet-50 IMAGENET1K_V1"),
    WeightsEntry(name="torchvision_resnet101", architecture="resnet101",
                 file="resnet101-63fe2227.pth", url=TV + "resnet101-63fe2227.pth", licence=BSD3,
                 converter="torchvision", sha256="63fe2227",
                 description="ResNet-101 IMAGENET1K_V1"),
    WeightsEntry(name="torchvision_resnet18", architecture="resnet18",
                 file="resnet18-f37072fd.pth", url=TV + "resnet18-f37072fd.pth", licence=BSD3,
                 converter="torchvision", sha256="f37072fd"),
    WeightsEntry(name="torchvision_resnext50_32x4d", architecture="resnext50_32x4d",
                 file="resnext50_32x4d-7cdf4587.pth", url=TV + "resnext50_32x4d-7cdf4587.pth",
                 licence=BSD3, converter="torchvision", sha256="7cdf4587"),
    WeightsEntry(name="torchvision_convnext_tiny", architecture="convnext_tiny",
                 file="convnext_tiny-983f1562.pth", url=TV + "convnext_tiny-983f1562.pth",
                 licence=BSD3, converter="torchvision_convnext", sha256="983f1562"),
    WeightsEntry(name="torchvision_convnext_base", architecture="convnext_base",
                 file="convnext_base-6075fbad.pth", url=TV + "convnext_base-6075fbad.pth",
                 licence=BSD3, converter="torchvision_convnext", sha256="6075fbad"),
    WeightsEntry(name="torchvision_efficientnet_b0", architecture="efficientnet_b0",
                 file="efficientnet_b0_rwightman-7f5810bc.pth",
                 url=TV + "efficientnet_b0_rwightman-7f5810bc.pth", licence=BSD3,
                 converter="torchvision_efficientnet", sha256="7f5810bc"),
    WeightsEntry(name="torchvision_efficientnet_b2", architecture="efficientnet_b2",
                 file="efficientnet_b2_rwightman-c35c1473.pth",
                 url=TV + "efficientnet_b2_rwightman-c35c1473.pth", licence=BSD3,
                 converter="torchvision_efficientnet", sha256="c35c1473"),
    # ---- detectron2's MSRA caffe ResNets: BGR, std 1, stride in the 1x1 conv
    WeightsEntry(name="msra_resnet50", architecture="resnet50", file="R-50.pkl",
                 url=MSRA + "R-50.pkl", licence=APACHE, converter="msra_pkl", sha256=None,
                 publication=("msra_r50",), pixels="msra_bgr",
                 description="MSRA caffe ResNet-50 (detectron2 ImageNetPretrained)",
                 options=(("stride_in_1x1", True),)),
    WeightsEntry(name="msra_resnet101", architecture="resnet101", file="R-101.pkl",
                 url=MSRA + "R-101.pkl", licence=APACHE, converter="msra_pkl", sha256=None,
                 publication=("msra_r101",), pixels="msra_bgr",
                 description="MSRA caffe ResNet-101", options=(("stride_in_1x1", True),)),
    # ---- FB semi-(weakly) supervised (torch.hub layout = torchvision keys)
    WeightsEntry(name="swsl_resnet50", architecture="resnet50",
                 file="semi_weakly_supervised_resnet50-16a12f1b.pth",
                 url=SWSL + "semi_weakly_supervised_resnet50-16a12f1b.pth", licence=CC_BY_NC,
                 converter="torchvision", sha256="16a12f1b", publication=("swsl_r50",),
                 description="Instagram-1B semi-weakly supervised ResNet-50"),
    WeightsEntry(name="ssl_resnet50", architecture="resnet50",
                 file="semi_supervised_resnet50-08389792.pth",
                 url=SWSL + "semi_supervised_resnet50-08389792.pth", licence=CC_BY_NC,
                 converter="torchvision", sha256="08389792",
                 description="YFCC100M semi-supervised ResNet-50"),
    WeightsEntry(name="swsl_resnet18", architecture="resnet18",
                 file="semi_weakly_supervised_resnet18-118f1556.pth",
                 url=SWSL + "semi_weakly_supervised_resnet18-118f1556.pth", licence=CC_BY_NC,
                 converter="torchvision", sha256="118f1556"),
    WeightsEntry(name="swsl_resnext50_32x4d", architecture="resnext50_32x4d",
                 file="semi_weakly_supervised_resnext50_32x4-72679e44.pth",
                 url=SWSL + "semi_weakly_supervised_resnext50_32x4-72679e44.pth", licence=CC_BY_NC,
                 converter="torchvision", sha256="72679e44"),
    # ---- timm releases
    WeightsEntry(name="seresnet50_ra_224", architecture="seresnet50",
                 file="seresnet50_ra_224-8efdb4bb.pth",
                 url=TIMM + "seresnet50_ra_224-8efdb4bb.pth", licence=APACHE, converter="timm",
                 sha256="8efdb4bb"),
    WeightsEntry(name="tf_efficientnet_b0_ns", architecture="tf_efficientnet_b0",
                 file="tf_efficientnet_b0_ns-c0e6a31c.pth",
                 url=TIMM + "tf_efficientnet_b0_ns-c0e6a31c.pth", licence=APACHE, converter="timm",
                 sha256="c0e6a31c", publication=("effb0_ns",),
                 description="Noisy Student (JFT-300M) EfficientNet-B0, TF padding"),
    WeightsEntry(name="tf_efficientnet_b2_ns", architecture="tf_efficientnet_b2",
                 file="tf_efficientnet_b2_ns-00306e48.pth",
                 url=TIMM + "tf_efficientnet_b2_ns-00306e48.pth", licence=APACHE, converter="timm",
                 sha256="00306e48", publication=("effb2_ns",),
                 description="Noisy Student (JFT-300M) EfficientNet-B2, TF padding"),
    WeightsEntry(name="efficientnet_b2_ra", architecture="efficientnet_b2",
                 file="efficientnet_b2_ra-bcdf34b7.pth",
                 url=TIMM + "efficientnet_b2_ra-bcdf34b7.pth", licence=APACHE, converter="timm",
                 sha256="bcdf34b7"),
    # ---- FB ConvNeXt release ({"model": ...}, head.* dropped)
    WeightsEntry(name="convnext_base_22k", architecture="convnext_base",
                 file="convnext_base_22k_224.pth", url=FB_CONVNEXT + "convnext_base_22k_224.pth",
                 licence=MIT, converter="fb_convnext", sha256=None,
                 publication=("convnext_b_22k",), description="ConvNeXt-B ImageNet-22k"),
    WeightsEntry(name="convnext_base_1k", architecture="convnext_base",
                 file="convnext_base_1k_224_ema.pth",
                 url=FB_CONVNEXT + "convnext_base_1k_224_ema.pth", licence=MIT,
                 converter="fb_convnext", sha256=None, publication=("convnext_b_1k",),
                 description="ConvNeXt-B ImageNet-1k (EMA)"),
    # ---- Swin (Microsoft release, {"model": ...} in the original layout)
    WeightsEntry(name="swin_tiny", architecture="swin_tiny",
                 file="swin_tiny_patch4_window7_224.pth",
                 url=SWIN + "swin_tiny_patch4_window7_224.pth", licence=MIT, converter="msft_swin",
                 sha256=None, publication=("swin_t",)),
    WeightsEntry(name="swin_small", architecture="swin_small",
                 file="swin_small_patch4_window7_224.pth",
                 url=SWIN + "swin_small_patch4_window7_224.pth", licence=MIT,
                 converter="msft_swin", sha256=None),
    WeightsEntry(name="swin_base", architecture="swin_base",
                 file="swin_base_patch4_window7_224.pth",
                 url=SWIN + "swin_base_patch4_window7_224.pth", licence=MIT, converter="msft_swin",
                 sha256=None),
    # ---- the ViT-B/16 checkpoints RobustViT fine-tunes (hila-chefer/RobustViT@df06c98
    # imagenet_finetune.py:25 / :34 import them; their URLs: ViT/ViT.py:29-32, 42-43). Both
    # are timm's VisionTransformer layout; DeiT's file is {"model": sd} (ViT.py:307).
    # RobustViT normalises every model with mean = std = 0.5 (segmentation_dataset.py:24-25);
    # DeiT was trained with the ImageNet statistics (timm/models/deit.py:146), given here.
    # (RobustViT's third model, AugReg-B, is a JAX .npz (ViT/ViT_new.py:84-86): not listed.)
    WeightsEntry(name="vit_base_patch16_224_in21k_ft_in1k", architecture="vit_base_patch16",
                 file="jx_vit_base_p16_224-80ecf9dd.pth",
                 url=TIMM_VITJX + "jx_vit_base_p16_224-80ecf9dd.pth", licence=APACHE,
                 converter="timm_vit", sha256="80ecf9dd", pixels="inception_rgb",
                 description="Google ViT-B/16, IN-21k pre-trained, IN-1k fine-tuned "
                             "(RobustViT's ViT-B)"),
    WeightsEntry(name="deit_base_patch16_224", architecture="vit_base_patch16",
                 file="deit_base_patch16_224-b5f2ef4d.pth",
                 url=FB_DEIT + "deit_base_patch16_224-b5f2ef4d.pth", licence=APACHE,
                 converter="timm_vit", sha256="b5f2ef4d",
                 description="DeiT-B/16, ImageNet-1k (RobustViT's DeiT-B)"),
    # ---- robust ResNet-50s (Yamada & Otani's list; "module." prefixes)
    WeightsEntry(name="augmix_resnet50", architecture="resnet50", file="augmix_resnet.pth.tar",
                 url="https://drive.google.com/file/d/1z-1V3rdFiwqSECz7Wkmn4VJVefJGJGiF",
                 licence=APACHE, converter="module_prefix", sha256=None,
                 publication=("augmix_r50",), description="AugMix ResNet-50 (180 epochs)"),
    WeightsEntry(name="deepaugment_resnet50", architecture="resnet50", file="deepaugment.pth.tar",
                 url="https://drive.google.com/file/d/1DPRElQnBG66nd7GUphVm1t-5NroL7t7k",
                 licence=MIT, converter="module_prefix", sha256=None),
    WeightsEntry(name="deepaugment_augmix_resnet50", architecture="resnet50",
                 file="deepaugment_and_augmix.pth.tar",
                 url="https://drive.google.com/file/d/1QKmc_p6-qDkh51WvsaS9HKFv8bX5jLnP",
                 licence=MIT, converter="module_prefix", sha256=None,
                 publication=("deepaugment_augmix_r50",)),
    WeightsEntry(name="ant_resnet50", architecture="resnet50", file="ANT3x3_Model.pth",
                 url="https://github.com/bethgelab/game-of-noise/releases/download/v1.0/ANT3x3_Model.pth",
                 licence=MIT, converter="module_prefix", sha256=None, publication=("ant_r50",)),
    WeightsEntry(name="sin_resnet50", architecture="resnet50",
                 file="resnet50_train_60_epochs-c8e5653e.pth.tar",
                 url="https://bitbucket.org/robert_geirhos/texture-vs-shape-pretrained-models/raw/"
       "6f41d2e86fc60566f78de64ecff35cc61eb6436f/resnet50_train_60_epochs-c8e5653e.pth.tar",
                 licence=MIT, converter="module_prefix", sha256="c8e5653e"),
    WeightsEntry(name="prime_resnet50", architecture="resnet50",
                 file="ResNet50_ImageNet_PRIME_noJSD.ckpt",
                 url="https://zenodo.org/record/5801872/files/ResNet50_ImageNet_PRIME_noJSD.ckpt",
                 licence=APACHE, converter="module_prefix", sha256=None,
                 publication=("prime_r50",)),
    *(  # madrylab/robust-models-transfer release files (robustness library checkpoints)
        WeightsEntry(name=f"adv_l2_eps{eps.replace('.', '_')}_resnet50", architecture="resnet50",
                     file=f"resnet50_l2_eps{eps}.ckpt", url=MADRY + f"resnet50_l2_eps{eps}.ckpt",
                     licence=MIT, converter="robustness", sha256=None,
                     publication=(f"adv_l2_{eps.replace('.', '_')}_r50",),
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


def unknown(name: str) -> str:
    """Why ``name`` is no weights, with the nearest valid value and every choice."""
    import difflib

    near = difflib.get_close_matches(name, ["imagenet", "none", *names()], n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return (f"unknown weights {name!r} ({hint}known: 'imagenet' (the backbone's default "
            f"checkpoint), 'none' (from scratch), a file path, or a catalogue name: "
            f"{', '.join(names())})")


def get(name: str) -> WeightsEntry:
    entry = _BY_NAME.get(name)
    if entry is None:
        raise ConfigError(unknown(name))
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


def weights_path(weights: str) -> Path | None:
    """The file a ``backbone.weights`` value names: a catalogue entry's file under
    $BENCH_WEIGHTS, or a path (relative paths under $BENCH_WEIGHTS); None for "imagenet"
    (packaged) and "none" (random init)."""
    if weights in ("imagenet", "none"):
        return None
    entry = lookup(weights)
    if entry is not None:
        return weights_root() / entry.file
    path = Path(weights).expanduser()
    return path if path.is_absolute() else weights_root() / path


_SHA256: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached per (path, size, mtime) for the process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA256:
        _SHA256[key] = sha256_file(path)
    return _SHA256[key]
