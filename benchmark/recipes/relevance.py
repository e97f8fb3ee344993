"""Relevance-map regularisation for ViT backbones (Chefer et al., NeurIPS 2022, "Optimizing
Relevance Maps of Vision Transformers Improves Robustness"; code
hila-chefer/RobustViT@df06c982, cited below as ``rv``).

Fine-tunes the FT detector of the same cell (the study fine-tunes a trained classifier)
with AdamW at a small lr, adding to the detection loss a term that pushes the backbone's
relevance map off the background and onto the ground-truth boxes:

    relevance loss = (λ_seg / λ_acc) · (λ_bg · MSE(rel · bg, 0) + λ_fg · MSE(rel · fg, fg))

rv's total is ``λ_seg · seg + λ_acc · CE(logits, own top-1 prediction)`` (rv
imagenet_finetune.py:332-349, λ_seg 0.8, λ_acc 0.2, λ_bg 2, λ_fg 0.3: lines 98-109). **The
classification term maps to the detector's own loss** (with the ground truth, weight 1,
which the loop always adds): rv keeps the prediction from drifting with a CE to the model's
own labels; a detector's analogue would be its NMS'd detections as pseudo-targets, which
the ground-truth loss already supersedes. The relevance term is scaled by λ_seg / λ_acc = 4
to keep rv's ratio (AdamW is invariant to the overall scale). rv's softmax temperature
(``--temperature``, :112, dividing the logits at :345-346; 0.65 for DeiT-B in the README)
acts on that classification term only, so it has no counterpart here.

**Relevance**, as rv's ``generate_relevance`` (ViT/explainer.py:31-54): R = I; per block,
A = mean over heads of clamp(∇A · A, min=0) (rule 5, explainer.py:6-11), R ← R + A·R (rule 6,
explainer.py:14-16, 52); gradients taken without a graph (``retain_graph`` only,
explainer.py:49), so the loss trains through the attention maps. Detector adaptations: the
explained score is minus the detection loss (rv: the true class's logit, index=class_name,
imagenet_finetune.py:326), from a second forward of the detector on the step's batch with
non-fused attention; the relevance of patch j is the mean of R over the patch tokens' rows
(rv reads the CLS row, explainer.py:53: our detector reads every patch token, never the CLS
token); min-max normalised per image (explainer.py:22-26) at patch resolution, not
bilinearly upsampled to pixels (explainer.py:20). The foreground mask: patches at least half
covered by a ground-truth box (rv: a segmentation map at pixel resolution).

**Schedule**, as rv's ``adjust_learning_rate`` (imagenet_finetune.py:542-546, called once per
epoch at :274): lr · 0.85^⌊epoch / 2⌋ over its 50 epochs (``--epochs`` default, :55), nothing
else — no warm-up, no steps. The relevance stage takes that schedule in place of the cell's
policy (the cell's ``iterations`` stay): the run is cut into ``lr_decay_periods`` = 25 equal
spans (50 epochs, one decay every 2) and span k trains at lr · ``lr_decay``^k. Spans, not
epochs: rv's epoch is a pass over its 1,500 segmented images (3 per class for 500 classes,
README "Method overview"), which says nothing about a detection split's, so the shape of
the decay is kept over the run instead. The step count lives in the optimizer's parameter
groups, so a resumed run continues the decay where it stopped.

Cost: a second detector forward, its backward to the attention maps and the relevance
backward; global attention maps (blocks × heads × tokens²) are held in memory. Limits: the
second forward runs outside DDP (untested with more than one process).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from benchmark.errors import ConfigError
from benchmark.recipes.base import RECIPES, Recipe
from benchmark.recipes.patches import BatchCapture, box_mask, patch_coverage
from benchmark.spec import RecipeSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

    from benchmark.models import Detector
    from benchmark.spec import RunSpec, Schedule

# rv imagenet_finetune.py:98-109 (--lambda_seg 0.8, --lambda_acc 0.2, --lambda_background 2,
# --lambda_foreground 0.3); :64 (--lr 3e-6); :68 (--wd 1e-4), used by AdamW at :222
LAMBDA_SEG, LAMBDA_ACC, LAMBDA_BG, LAMBDA_FG = 0.8, 0.2, 2.0, 0.3
LR, WEIGHT_DECAY = 3e-6, 1e-4
# rv imagenet_finetune.py:544 (× 0.85 every 2 epochs) over :55's 50 epochs: 25 spans
LR_DECAY, LR_DECAY_PERIODS = 0.85, 25


def relevance_loss(rel: torch.Tensor, fg: torch.Tensor, w_bg: float = LAMBDA_BG,
                   w_fg: float = LAMBDA_FG) -> torch.Tensor:
    """rv imagenet_finetune.py:328-335: ``w_bg·MSE(rel·bg, 0) + w_fg·MSE(rel·fg, fg)``,
    bg = 1 − fg, means over every element."""
    import torch
    import torch.nn.functional as F

    bg = 1 - fg
    return (w_bg * F.mse_loss(rel * bg, torch.zeros_like(rel))
            + w_fg * F.mse_loss(rel * fg, fg))


def rollout(attentions: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """(N, T, T) relevance of tokens to tokens: rules 5 and 6 of rv ViT/explainer.py."""
    import torch

    n, _, t, _ = attentions[0].shape
    r = torch.eye(t, device=attentions[0].device).expand(n, t, t)
    for a, g in zip(attentions, grads, strict=True):
        cam = (g * a).clamp(min=0).mean(dim=1)  # rule 5 (explainer.py:9-10)
        r = r + torch.bmm(cam, r)  # rule 6 (explainer.py:15, 52)
    return r


def patch_relevance(r: torch.Tensor, prefix: int, grid: tuple[int, int]) -> torch.Tensor:
    """(N, gh, gw): the mean of the patch tokens' rows of ``r``, min-max normalised per
    image (explainer.py:22-26)."""
    rel = r[:, prefix:, prefix:].mean(dim=1)
    low, high = rel.amin(1, keepdim=True), rel.amax(1, keepdim=True)
    rel = (rel - low) / (high - low).clamp_min(1e-12)
    return rel.reshape(rel.shape[0], *grid)


def _trunk_net(body: nn.Module) -> nn.Module | None:
    """The timm ViT of a :class:`~benchmark.models.backbones.vit.ViTBody`, else None."""
    from benchmark.models.backbones.vit import Trunk, ViTBody

    if isinstance(body, ViTBody) and isinstance(body.stages[0], Trunk):
        return body.stages[0].net
    return None


@lru_cache(maxsize=64)
def _has_global_attention(backbone: str) -> tuple[bool, str]:
    """Built on the meta device (no weights, no memory), once per backbone name."""
    import torch

    from benchmark.models.backbones import BACKBONES

    with torch.device("meta"):
        body = BACKBONES.get(backbone)("none")
    return _trunk_net(body) is not None, type(body).__name__


@RECIPES.register("relevance")
class RelevanceFineTune(Recipe):
    PARAMS: dict[str, Any] = {"lr": LR, "backbone_lr_mult": 1.0, "weight_decay": WEIGHT_DECAY,
                              "lambda_seg": LAMBDA_SEG, "lambda_acc": LAMBDA_ACC,
                              "lambda_bg": LAMBDA_BG, "lambda_fg": LAMBDA_FG, "ft_lr": None,
                              "lr_decay": LR_DECAY, "lr_decay_periods": LR_DECAY_PERIODS}
    RANGES = {**Recipe.RANGES, "weight_decay": (0.0, math.inf, True),
              "lr_decay": (0.0, 1.0, False), "lr_decay_periods": (1.0, math.inf, True),
              "lambda_seg": (0.0, math.inf, True), "lambda_acc": (0.0, math.inf, False),
              "lambda_bg": (0.0, math.inf, True), "lambda_fg": (0.0, math.inf, True),
              "ft_lr": (0.0, math.inf, False)}

    def __init__(self, spec: RecipeSpec) -> None:
        super().__init__(spec)
        periods = self.params["lr_decay_periods"]
        if not isinstance(periods, int) or isinstance(periods, bool):
            raise ConfigError(f"recipe 'relevance': lr_decay_periods={periods!r}: must be an "
                              "int >= 1")
        self._optimizer: torch.optim.Optimizer | None = None
        self._iterations = 1
        self.capture: BatchCapture | None = None
        self.attentions: list[torch.Tensor] = []
        self.attn_modules: list[nn.Module] = []
        self.handles: list[Any] = []

    def check(self, spec: RunSpec) -> None:
        name = spec.backbone.name
        ok, kind = _has_global_attention(name)
        if not ok:
            raise ConfigError(
                f"backbone.name={name!r}: recipe 'relevance' needs a ViT's global "
                f"self-attention and a {kind} has none (allowed: ViT bodies, e.g. "
                "vit_base_patch16)")

    def parent_recipe(self) -> RecipeSpec:
        ft_lr = self.params["ft_lr"]
        return RecipeSpec.make("ft", **({} if ft_lr is None else {"lr": ft_lr}))

    def optimizer(self, groups: list[dict[str, Any]], lr: float,
                  schedule: Schedule) -> torch.optim.Optimizer:
        import torch

        # rv imagenet_finetune.py:222: AdamW(lr, weight_decay=args.weight_decay)
        opt = torch.optim.AdamW(groups, lr=lr, weight_decay=float(self.params["weight_decay"]))
        for g in opt.param_groups:  # saved with the optimizer's state: restored on resume
            g["decay_base_lr"] = g.get("base_lr", g["lr"])
            g["decay_step"] = 0
        self._optimizer, self._iterations = opt, schedule.iterations
        return opt

    def decay_factor(self, step: int) -> float:
        """rv's lr multiplier at (0-based) step ``step`` of this stage: ``lr_decay`` to the
        index of the span the step falls in (0 … ``lr_decay_periods`` − 1)."""
        span = step * int(self.params["lr_decay_periods"]) // self._iterations
        return float(self.params["lr_decay"]) ** span

    def after_backward(self, model: Detector, lr: float) -> None:
        """Set this step's lr to rv's schedule (replacing the cell's policy, which the loop
        applied before the forward), then count the step."""
        if self._optimizer is None:
            return
        for g in self._optimizer.param_groups:
            g["lr"] = g["decay_base_lr"] * self.decay_factor(g["decay_step"])
            g["decay_step"] += 1

    def configure(
        self, model: Detector, start_state: dict[str, torch.Tensor], importance: dict | None
    ) -> None:
        net = _trunk_net(model.body)
        if net is None:
            raise ConfigError(f"recipe 'relevance': a {type(model.body).__name__} body has no "
                              "ViT attention")
        self.net = net
        self.attn_modules = [blk.attn for blk in net.blocks]
        for h in self.handles:
            h.remove()
        self.handles = [m.attn_drop.register_forward_hook(self._keep) for m in self.attn_modules]
        if self.capture is not None:
            self.capture.remove()
        self.capture = BatchCapture(model)
        self._recording = False

    def _keep(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if self._recording:
            self.attentions.append(output)  # softmax(QKᵀ/√d), in the graph

    def _attention_pass(self, model: Detector, images: list[torch.Tensor],
                        targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """The detector's losses on the batch, every block's attention map kept."""
        fused = [m.fused_attn for m in self.attn_modules]
        self.attentions, self._recording = [], True
        try:
            for m in self.attn_modules:
                m.fused_attn = False  # materialise the attention probabilities
            return model.losses(images, targets)
        finally:
            self._recording = False
            for m, f in zip(self.attn_modules, fused, strict=True):
                m.fused_attn = f

    def extra_losses(
        self, model: Detector, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        import torch

        assert self.capture is not None, "configure() first"
        losses = self._attention_pass(model, images, targets)
        attentions, self.attentions = self.attentions, []
        x = self.capture.tensor
        if x is None or not attentions or not attentions[0].requires_grad:
            return {}
        boxes = self.capture.boxes_on_tensor(images, targets)
        self.capture.tensor = self.capture.boxes = None
        score = -sum(losses.values())  # what the detector is rewarded for
        grads = torch.autograd.grad(score, attentions, retain_graph=True)  # no create_graph
        patch = self.net.patch_embed.patch_size[0]
        grid = (math.ceil(x.shape[-2] / patch), math.ceil(x.shape[-1] / patch))
        rel = patch_relevance(rollout(attentions, list(grads)), self.net.num_prefix_tokens, grid)
        fg = (patch_coverage(box_mask(boxes, *x.shape[-2:]), patch) >= 0.5).to(rel.dtype)
        p = self.params
        seg = relevance_loss(rel, fg, float(p["lambda_bg"]), float(p["lambda_fg"]))
        return {"loss_relevance": float(p["lambda_seg"]) / float(p["lambda_acc"]) * seg}

    def finalize(self, model: Detector, start_state: dict[str, torch.Tensor]) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        if self.capture is not None:
            self.capture.remove()
        self.capture = None
