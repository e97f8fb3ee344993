"""Yamada & Otani's COCO protocol (benchmark/grids/robust_transfer_coco.yaml): the options it
needs reach the optimizer and the body — AdamW, stochastic depth, mmdetection's BatchNorm
handling — the Swin crop policy keeps boxes and masks together, and the grid expands to the
study's cells."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torchvision

from benchmark.data.loader import STUDY_CROP_RANGE, study_crop
from benchmark.errors import ConfigError
from benchmark.families import YAMADA_CARD, yamada_card
from benchmark.grid import load_grid
from benchmark.models.backbones import build_body
from benchmark.models.backbones.resnet import EvalAffineBatchNorm2d
from benchmark.protocol_card import card_of, flatten
from benchmark.recipes import get_recipe
from benchmark.spec import BackboneSpec, RecipeSpec, RunSpec, Schedule
from benchmark.training.checkpoint import load_detector
from tests.conftest import TINY_GRID


def _tiny(backbone: BackboneSpec, recipe: RecipeSpec | None = None) -> RunSpec:
    base = load_grid(str(TINY_GRID), resolve_data=False).runs[0]
    return replace(base, backbone=backbone, recipe=recipe or RecipeSpec.make("ft"))


# ---- optimizer ---------------------------------------------------------------------------------
def test_adamw_reaches_the_optimizer_with_the_schedules_decay():
    sched = Schedule(iterations=10, batch_size=2, lr=1e-4, weight_decay=0.05)
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    groups = [{"params": [a], "lr": 1e-4}, {"params": [b], "lr": 1e-4, "weight_decay": 0.0}]
    opt = get_recipe(RecipeSpec.make("ft", optimizer="adamw")).optimizer(groups, 1e-4, sched)
    assert type(opt) is torch.optim.AdamW
    # mmdetection's Swin config: betas (0.9, 0.999), weight_decay 0.05; eps torch's 1e-8
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["eps"] == 1e-8
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]
    for name in ("fixed_features", "prime_ft"):
        opt = get_recipe(RecipeSpec.make(name, optimizer="adamw")).optimizer(
            [{"params": [a]}], 1e-4, sched)
        assert type(opt) is torch.optim.AdamW
    sgd = get_recipe(RecipeSpec.make("ft")).optimizer([{"params": [a]}], 0.02, sched)
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.9
    with pytest.raises(ConfigError, match="optimizer='adam'"):
        get_recipe(RecipeSpec.make("ft", optimizer="adam"))


# ---- stochastic depth --------------------------------------------------------------------------
def test_drop_path_reaches_swins_blocks_linearly_in_depth():
    """drop-path 0.2 over Swin-T's 2 + 2 + 6 + 2 = 12 blocks: block i drops with 0.2·i/11
    (the first block 0: no DropPath at all), as mmdetection's linspace(0, 0.2, 12)."""
    model = load_detector(_tiny(BackboneSpec(name="swin_tiny", weights="none", drop_path=0.2)),
                          3, None)
    blocks = [blk for stage in model.body.stages[1:] for blk in stage.blocks]
    assert len(blocks) == 12
    rates = [float(getattr(blk.drop_path1, "drop_prob", 0.0)) for blk in blocks]
    assert rates == pytest.approx([0.2 * i / 11 for i in range(12)])
    plain = build_body("swin_tiny", "none", None)
    assert all(not hasattr(blk.drop_path1, "drop_prob")
               for stage in plain.stages[1:] for blk in stage.blocks)


# ---- BatchNorm: statistics frozen, affine trained ----------------------------------------------
@pytest.fixture
def r18_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = torchvision.models.resnet18()
    with torch.no_grad():  # statistics that are not the identity
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "r18.pth"
    torch.save(net.state_dict(), path)
    return path


def _bn_tensors(body: torch.nn.Module) -> tuple[list[str], list[str]]:
    """(trainable, frozen) BatchNorm affine parameter names of ``body``."""
    names = [(f"{m}.{n}", p.requires_grad) for m, mod in body.named_modules()
             if isinstance(mod, EvalAffineBatchNorm2d)
             for n, p in mod.named_parameters(recurse=False)]
    return [n for n, g in names if g], [n for n, g in names if not g]


def test_eval_affine_trains_batchnorm_affine_past_the_frozen_stages(r18_file):
    """ResNet-18: 20 BatchNorms (stem 1; 2 per block × 8 blocks; 3 downsamples), 40 affine
    tensors. Stem + layer1 (freeze_at 2, mmdetection's frozen_stages=1) hold 1 + 4 BNs: 10
    frozen tensors; layers 2-4 hold 3 × 5 BNs: 30 trainable. "frozen" has no BN parameter."""
    body = build_body("resnet18", str(r18_file), None, norm="eval_affine")
    trainable, frozen = _bn_tensors(body)
    assert len(trainable) == 30 and len(frozen) == 10
    assert all(n.startswith(("stages.0.", "stages.1.")) for n in frozen)
    default = build_body("resnet18", str(r18_file), None)
    assert _bn_tensors(default) == ([], [])
    assert len(list(default.parameters())) == len(list(body.parameters())) - 40
    assert sorted(default.state_dict()) == sorted(body.state_dict())  # checkpoints load both ways


def test_eval_affine_statistics_stay_while_the_affine_moves(r18_file):
    spec = _tiny(BackboneSpec(name="resnet18", weights=str(r18_file), norm="eval_affine"))
    assert spec.to_json()["backbone"]["norm"] == "eval_affine"
    assert "norm" not in _tiny(BackboneSpec(name="resnet18", weights="none")).to_json()["backbone"]
    torch.manual_seed(0)
    model = load_detector(spec, 3, None)
    model.train()
    before = {k: v.clone() for k, v in model.body.state_dict().items()}
    opt = torch.optim.SGD([p for _, p in model.body_parameters()], lr=0.1)
    images = [torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 44.0]]), "labels": torch.tensor([1])}] * 2
    opt.zero_grad()
    sum(model.losses(images, targets).values()).backward()
    opt.step()
    after = model.body.state_dict()
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert len(stats) == 40 and all(torch.equal(after[k], before[k]) for k in stats)
    trainable, _ = _bn_tensors(model.body)
    assert any(not torch.equal(after[k], before[k]) for k in trainable)


def test_norm_option_is_refused_where_there_is_no_batchnorm(r18_file):
    with pytest.raises(ConfigError, match="backbone.norm='eval_affine'"):
        build_body("swin_tiny", "none", None, norm="eval_affine")
    with pytest.raises(ConfigError, match="GroupNorm"):
        build_body("resnet18", "none", None, norm="eval_affine")
    with pytest.raises(ConfigError, match="backbone.norm"):
        BackboneSpec(name="resnet50", norm="train")


# ---- the Swin crop policy ----------------------------------------------------------------------
def _scene() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """800 × 1000 (H × W) with three boxes whose masks fill them exactly."""
    boxes = torch.tensor([[100.0, 100.0, 400.0, 300.0], [0.0, 600.0, 60.0, 800.0],
                          [900.0, 0.0, 1000.0, 50.0]])
    masks = torch.zeros(3, 800, 1000, dtype=torch.uint8)
    for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
        masks[i, y0:y1, x0:x1] = 1
    image = torch.rand(3, 800, 1000, generator=torch.Generator().manual_seed(0))
    return image, {"boxes": boxes, "labels": torch.tensor([1, 2, 3]), "masks": masks}


def test_study_crop_sizes_and_boxes_follow_their_masks():
    """Short side 400 / 500 / 600 of 800 × 1000 gives 400 × 500, 500 × 625 or 600 × 750;
    the crop is 384 to 600 (at most the image) per side; every kept box is inside the crop
    and is its cropped mask's bounding box (to the pixel the nearest-resize rounds);
    half the draws leave the image as it is."""
    image, target = _scene()
    taken = 0
    for seed in range(16):
        out, t = study_crop(image, target, torch.Generator().manual_seed(seed))
        if out is image:
            assert t is target
            continue
        taken += 1
        h, w = out.shape[-2:]
        low, high = STUDY_CROP_RANGE
        assert low <= h <= high and low <= w <= high
        assert len(t["boxes"]) == len(t["labels"]) == len(t["masks"]) <= 3
        assert t["masks"].shape[-2:] == (h, w)
        assert (t["boxes"][:, [0, 2]] <= w).all() and (t["boxes"][:, [1, 3]] <= h).all()
        for box, mask in zip(t["boxes"], t["masks"], strict=True):
            ys, xs = torch.nonzero(mask, as_tuple=True)
            hull = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
            assert torch.allclose(hull, box, atol=1.0), (seed, hull, box)
    assert 0 < taken < 16


def test_study_crop_is_a_function_of_the_generator():
    image, target = _scene()
    a = study_crop(image, target, torch.Generator().manual_seed(3))
    b = study_crop(image, target, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1]["boxes"], b[1]["boxes"])


# ---- the grid ----------------------------------------------------------------------------------
def test_the_grid_expands_to_the_studys_cells():
    runs = load_grid("robust_transfer_coco", resolve_data=False, check_weights=False).runs
    cells = {(r.backbone.weights, r.recipe.name): r for r in runs}
    assert len(cells) == len(runs) == 17
    # 24 epochs of the 117,266 annotated train2017 images at 16 per iteration
    epoch = math.ceil(117266 / 16)
    assert epoch == 7330
    for r in runs:
        s, recipe = r.schedule, get_recipe(r.recipe)
        assert r.engine == "mrcnn_fpn" and r.family == "coco_c"
        assert (s.iterations, s.batch_size, s.steps, s.warmup_iters, s.policy) == (
            24 * epoch, 16, (16 * epoch, 22 * epoch), 500, "step")
        assert r.corruption is not None and r.corruption.channel_order == "bgr"
        swin = r.backbone.name == "swin_tiny"
        assert recipe.params["optimizer"] == ("adamw" if swin else "sgd")
        assert r.backbone.drop_path == (0.2 if swin else 0.0)
        assert r.backbone.norm == ("frozen" if swin else "eval_affine")
        assert s.amp == ("fp16" if swin else "off")
        assert s.weight_decay_norm == (0.0 if swin else None)  # mmdetection's paramwise_cfg
        assert (s.weight_decay, s.train_sizes[-1]) == ((0.05, 800) if swin else (1e-4, 800))
        expected = 1e-4 if swin else 0.02 if r.recipe.name == "ft" and \
            r.backbone.weights == "torchvision_resnet50" else 0.04
        assert recipe.lr(s.lr) == expected
        if r.recipe.name == "prime_ft":
            assert recipe.params["variant"] == "study"
        if r.recipe.name == "fixed_features":
            assert recipe.params["norm_lr_mult"] == 0.0
    assert {w for w, n in cells if n == "fixed_features"} == {
        "torchvision_resnet50", "ant_resnet50", "deepaugment_augmix_resnet50", "swin_tiny"}
    assert {w for w, n in cells if n == "prime_ft"} == {
        "torchvision_resnet50", "deepaugment_augmix_resnet50", "prime_resnet50", "swin_tiny"}
    assert len([1 for _, n in cells if n == "ft"]) == 9


def test_the_cards_agree_where_the_grid_follows_the_study():
    """The grid's cells and the study's card state the same sizes, lr, policy, warm-up,
    BatchNorm handling and corruption sweep (the detector geometry is detectron2's here)."""
    runs = load_grid("robust_transfer_coco", resolve_data=False, check_weights=False).runs
    same = ("train_sizes", "max_size", "test_size", "schedule.lr", "schedule.policy",
            "schedule.warmup_iters", "corruption.channel_order", "corruption.severities",
            "evaluator.summary")
    for r in runs:
        swin = r.backbone.name == "swin_tiny"
        lr = get_recipe(r.recipe).lr(r.schedule.lr)
        ours, theirs = flatten(card_of(r).to_json()), flatten(yamada_card(lr, swin=swin))
        for key in same:
            assert ours[key] == theirs[key], (r.label, key)
        if not swin:
            assert ours["input.bn"] == YAMADA_CARD["input"]["bn"]


def test_the_crop_policy_reaches_training_batches_only(bench_env: Path) -> None:
    """``schedule.augment: study_crop`` (the Swin cells of robust_transfer_coco): a training
    batch goes through the crop policy — the same batch every time it is drawn, so a resumed
    run takes the same steps — while the RGN / importance batches and a grid without the key
    see the images as stored."""
    from benchmark.data.split import load_split
    from benchmark.store import TrainingDir
    from benchmark.training import Trainer

    base = next(s for s in load_grid(str(TINY_GRID)).runs
                if s.backbone.name == "resnet18" and s.recipe.name == "ft")
    assert "augment" not in base.to_json()["schedule"]  # the default leaves fingerprints
    cropped = replace(base, schedule=replace(base.schedule, augment="study_crop"))
    assert cropped.fingerprint != base.fingerprint
    split = load_split(base.train_split)
    plain, crop = (Trainer(s, split, TrainingDir("aug")) for s in (base, cropped))
    shapes = {tuple(im.shape) for it in range(8) for im in plain.batch(it)[0]}
    assert shapes == {(3, 160, 160)}  # the tiny demo's stored size
    drawn = [crop.batch(it) for it in range(8)]
    assert {tuple(im.shape) for images, _ in drawn for im in images} != shapes
    again = crop.batch(5)
    assert all(torch.equal(a, b) for a, b in zip(again[0], drawn[5][0], strict=True))
    rgn = {tuple(im.shape) for it in range(8) for im in crop.batch(it, "rgn")[0]}
    assert rgn == {(3, 160, 160)}
