"""What every backbone shares: the :class:`Body`, the registry (declared in
:mod:`benchmark.models.registries`), resolving a ``weights`` value
(catalogue name, "imagenet", "none" or a path) and loading it strictly, freezing BatchNorm."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from benchmark.errors import ConfigError, MissingFileError
from benchmark.models.checkpoints import catalogue
from benchmark.models.checkpoints.catalogue import (
    IMAGENET_RGB,
    PixelStats,
    WeightsEntry,
    file_sha256,
    weights_path,
)
from benchmark.models.checkpoints.convert import (
    CONVERTERS,
    MatchReport,
    load_matched,
    read_checkpoint,
)
from benchmark.models.registries import BACKBONES

LEVEL_STRIDES = (4, 8, 16, 32)  # P2–P5
OUT_STRIDES = (8, 16, 32)  # what ``forward`` returns (the engine's FPN input today)


class Body(nn.Module):
    """Stages run in order; the last four produce strides 4, 8, 16, 32 (:meth:`levels`),
    the last three are :meth:`forward`'s feature maps "0", "1", "2" (strides 8, 16, 32).

    ``freeze_norms``: True freezes every LayerNorm / GroupNorm; a callable freezes the
    parameters whose body-relative name it accepts. ``pixels`` are the statistics and
    channel order the weights expect: the engine normalises the RGB image with
    :attr:`rgb_pixel_mean` / :attr:`rgb_pixel_std`, the body reorders channels itself.
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        out_channels: list[int],
        default_freeze_at: int,
        freeze_norms: bool | Callable[[str], bool] = False,
        *,
        level_channels: list[int] | None = None,
        pixels: PixelStats = IMAGENET_RGB,
        nhwc: bool = False,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.out_channels = out_channels
        self.level_channels = level_channels
        self.default_freeze_at = default_freeze_at
        self.freeze_norms = freeze_norms
        self.pixels = pixels
        self.nhwc = nhwc  # stages exchange (N, H, W, C) tensors (Swin)
        self.weights_report: MatchReport | None = None  # how the checkpoint's keys matched
        self.fpn_norm = ""  # the norm the studies put in this body's FPN ("" or "GN")

    # ---- what the weights expect ------------------------------------------------------------
    @property
    def pixel_mean(self) -> tuple[float, float, float]:
        return self.pixels.mean

    @property
    def pixel_std(self) -> tuple[float, float, float]:
        return self.pixels.std

    @property
    def channel_order(self) -> str:
        return self.pixels.channel_order

    @property
    def rgb_pixel_mean(self) -> tuple[float, float, float]:
        return self.pixels.rgb_mean

    @property
    def rgb_pixel_std(self) -> tuple[float, float, float]:
        return self.pixels.rgb_std

    # ---- freezing -----------------------------------------------------------------------------
    def freeze(self, freeze_at: int) -> None:
        if freeze_at > len(self.stages):
            raise ConfigError(
                f"backbone.freeze_at={freeze_at}: this backbone has only {len(self.stages)} stages"
            )
        for stage in list(self.stages)[:freeze_at]:
            for p in stage.parameters():
                p.requires_grad_(False)
        if callable(self.freeze_norms):
            for name, p in self.named_parameters():
                if self.freeze_norms(name):
                    p.requires_grad_(False)
        elif self.freeze_norms:
            for m in self.modules():
                if isinstance(m, nn.LayerNorm | nn.GroupNorm) or type(m).__name__ == "LayerNorm2d":
                    for p in m.parameters():
                        p.requires_grad_(False)

    # ---- forward ------------------------------------------------------------------------------
    def _levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four feature maps at strides 4, 8, 16, 32."""
        outs = []
        first = len(self.stages) - 4
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= first:
                outs.append(x.permute(0, 3, 1, 2) if self.nhwc else x)
        return outs

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) if self.pixels.channel_order == "BGR" else x

    def levels(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """P2–P5 inputs: feature maps at strides 4, 8, 16, 32, keyed "p2" … "p5"."""
        return OrderedDict((f"p{i + 2}", f) for i, f in enumerate(self._levels(self._input(x))))

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self._levels(self._input(x))[1:]
        return OrderedDict((str(i), f) for i, f in enumerate(feats))


#: backbones whose builder takes ``norm`` (a BatchNorm handling other than "frozen")
NORM_OPTION: set[str] = set()


@dataclass(frozen=True)
class Source:
    """A resolved ``weights`` value: the file and the catalogue entry it is (None for a
    path of unknown content)."""

    weights: str
    path: Path
    entry: WeightsEntry | None

    @property
    def pixels(self) -> PixelStats:
        return self.entry.pixel_stats if self.entry else IMAGENET_RGB

    def option(self, key: str, default: object = None) -> object:
        return self.entry.option(key, default) if self.entry else default


def resolve_source(weights: str, architecture: str, *, verify: bool = True) -> Source:
    """Check a catalogue name against ``architecture`` (and its file's hash with ``verify``);
    identify a path by its sha256 in the catalogue. Raises ConfigError / MissingFileError."""
    entry = catalogue.lookup(weights)
    if entry is None and catalogue.looks_like_name(weights):
        catalogue.get(weights)  # raises: unknown name, with the known ones
    if entry is not None and entry.architecture != architecture:
        raise ConfigError(
            f"backbone.weights={weights!r}: a {entry.architecture} checkpoint, not "
            f"{architecture} (pair it with backbone {entry.architecture!r})"
        )
    path = weights_path(weights)
    assert path is not None
    if not path.is_file():
        raise MissingFileError(path, f"backbone.weights={weights!r} for {architecture}",
                               entry.url if entry else "")
    if entry is not None and verify:
        digest = file_sha256(path)
        if catalogue.hash_matches(entry, digest) is False:
            raise ConfigError(
                f"backbone.weights={weights!r}: {path} has sha256 {digest}, the catalogue "
                f"expects {entry.sha256} ({entry.url})"
            )
    if entry is None and verify:
        known = catalogue.by_sha256(file_sha256(path))
        if known is not None and known.architecture == architecture:
            entry = known  # identified by its content: its converter and statistics apply
    return Source(weights, path, entry)


def load_source(net: nn.Module, src: Source, native: str, head: tuple[str, ...],
                strict: bool = True) -> MatchReport:
    """Read ``src``'s file, convert it (the entry's converter, else ``native``) and load it
    into ``net`` with strict key matching (``head``: classifier prefixes, not loaded)."""
    raw = read_checkpoint(src.path)
    converter = src.entry.converter if src.entry else native
    try:
        state = CONVERTERS.get(converter)(raw, net)
    except ConfigError as e:
        raise ConfigError(f"backbone.weights={src.weights!r} ({src.path}): {e}") from None
    return load_matched(net, state, head, strict, f"backbone.weights={src.weights!r} ({src.path}) "
                                           f"with converter {converter!r}")


def imagenet_is_not_packaged(what: str, published: str) -> ConfigError:
    names = [e.name for e in catalogue.entries() if e.architecture == what]
    alt = f", or one of the catalogue's: {', '.join(names)}" if names else ""
    return ConfigError(
        f"backbone.weights='imagenet': no installed package ships {what} weights; "
        f"give the path of the checkpoint published at {published}{alt}"
    )


def no_stochastic_depth(what: str, drop_path: float) -> None:
    if drop_path:
        raise ConfigError(f"backbone.drop_path={drop_path}: {what} has no stochastic depth")


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d by FrozenBatchNorm2d holding the same statistics."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def build_body(name: str, weights: str, freeze_at: int | None, *, strict: bool = True,
               drop_path: float = 0.0, norm: str = "frozen") -> Body:
    """Build, load and freeze backbone ``name``. ``strict`` False admits a checkpoint that
    covers part of the body; ``drop_path`` is the stochastic-depth rate (0: as the studies
    fine-tune); ``norm`` the BatchNorm handling (:data:`benchmark.spec.NORM_MODES`; only
    the builders that take it accept another value than "frozen")."""
    builder = BACKBONES.get(name)
    defaults = {"strict": True, "drop_path": 0.0, "norm": "frozen"}
    options = {k: v for k, v in (("strict", strict), ("drop_path", drop_path), ("norm", norm))
               if v != defaults[k]}
    if "norm" in options and name not in NORM_OPTION:
        raise ConfigError(f"backbone.norm={norm!r}: backbone {name!r} takes only 'frozen' "
                          f"(backbones with the option: {', '.join(sorted(NORM_OPTION))})")
    body = builder(weights, **options)
    body.freeze(body.default_freeze_at if freeze_at is None else freeze_at)
    return body
