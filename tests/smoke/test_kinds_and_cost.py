"""Kinds of the full grid, and the cost sheet's arithmetic."""

from __future__ import annotations

from dataclasses import replace

from benchmark.grid import load_grid
from benchmark.smoke.cell import KindResult
from benchmark.smoke.cli import smoke_schedule
from benchmark.smoke.cost import grid_cost
from benchmark.smoke.kinds import group_kinds, kind_of


def test_the_full_grid_has_one_kind_per_family_backbone_recipe_and_schedule_shape() -> None:
    cells = load_grid("full", resolve_data=False, check_weights=False).cells()
    groups = group_kinds(cells)
    assert (len(cells), len(groups)) == (540, 156)  # 4 families × 3 backbones × 13 recipes
    labels = {g.kind.label for g in groups}
    # seeds and WiSE-FT's α share a kind; reg_ft's weightings are three code paths
    assert sum("/wise_ft/" in label for label in labels) == 12
    assert sum("/reg_ft(weighting=" in label for label in labels) == 36
    assert ("cityscapes/mrcnn_fpn/resnet50[torchvision_resnet50]/ft/b8@800-1024/1024<=2048"
            in labels)
    for g in groups:
        assert {kind_of(s) for s in g.cells} == {g.kind}
        assert len({s.seed for s in g.cells}) == 3


def test_cost_sheet_counts_every_training_once_at_its_kinds_speed() -> None:
    grid = load_grid("coco_c", resolve_data=False, check_weights=False)
    cells = grid.cells()
    measured = {kind_of(s).label: KindResult(kind_of(s).label, s.fingerprint, s_per_iter=2.0,
                                             eval_s=10.0, eval_images=20,
                                             checkpoint_bytes=100, prediction_bytes=2000)
                for s in cells}
    images = {"coco_train2017": 118287, "coco_val2017": 5000}.get
    sheet = grid_cost(cells, measured, lambda s: images(s, 1000))
    trainings = {s.train_fingerprint for s in cells}
    assert sheet.trainings == len(trainings) < len(cells)  # COCO-C and COCO-O share them
    assert sheet.iterations == 90000 * sheet.trainings
    assert sheet.train_s == 2.0 * sheet.iterations
    assert sheet.checkpoint_bytes == 100 * sheet.trainings
    per_cell = 5000 * 76 if cells[0].corruption else 5000 + 6 * 1000
    assert sheet.eval_images >= per_cell
    assert sheet.eval_s == 0.5 * sheet.eval_images  # 10 s / 20 images
    fast = grid_cost(cells, measured, lambda s: images(s, 1000), img_per_s=16.0)
    assert fast.train_s == sheet.iterations  # batch 16 at 16 images/s: 1 s per iteration


def test_the_smoke_schedule_shrinks_only_what_it_says() -> None:
    spec = load_grid("full", resolve_data=False, check_weights=False).cells()[0]
    s = smoke_schedule(spec.schedule, 2, 1.0)
    assert (s.iterations, s.checkpoint_every, s.rgn_batches, s.importance_batches) == (2, 2, 1, 1)
    assert (s.train_sizes, s.test_size, s.batch_size) == (
        spec.schedule.train_sizes, spec.schedule.test_size, spec.schedule.batch_size)
    small = smoke_schedule(spec.schedule, 2, 0.2)
    assert (small.train_sizes, small.test_size, small.max_size) == ((96, 128, 160), 160, 256)
    assert small.batch_size == spec.schedule.batch_size == 2
    capped = smoke_schedule(replace(spec.schedule, batch_size=16), 2, 1.0, batch=4)
    assert capped.batch_size == 4 and capped.train_sizes == spec.schedule.train_sizes
    assert smoke_schedule(spec.schedule, 2, 1.0, batch=4).batch_size == 2  # a cap, not a set
