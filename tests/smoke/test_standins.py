"""Stand-in inputs: every split a published grid reads has a raw layout that the real
converter turns into a split at the dataset's true image size, and every weights converter
the published grids use reads a structure-only file of its architecture."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.sources import Options
from benchmark.grid import GRIDS_DIR, load_grid
from benchmark.models.backbones import build_body
from benchmark.models.checkpoints import catalogue
from benchmark.smoke.standin_data import STANDINS, Sizes, standin_for
from benchmark.smoke.standin_weights import PREFIX, standin_entry
from benchmark.spec import parse_corrupted_split_name

PUBLISHED = sorted(p.stem for p in GRIDS_DIR.glob("*.yaml") if p.stem != "demo")


def _splits(grid: str) -> set[str]:
    try:
        cells = load_grid(grid, resolve_data=False, check_weights=False).cells()
    except Exception:  # noqa: BLE001 - the detectron2 grid where detectron2 is absent
        return set()
    return {(p[0] if (p := parse_corrupted_split_name(s)) else s)
            for spec in cells for s in spec.all_splits}


def test_every_split_of_the_published_grids_has_a_stand_in() -> None:
    splits = set().union(*(_splits(g) for g in PUBLISHED))
    assert len(splits) >= 16
    assert [s for s in sorted(splits) if standin_for(s) is None] == []


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every stand-in dataset at its true size, converted once (2 train / 1 eval images)."""
    base = tmp_path_factory.mktemp("standins")
    out = {}
    for standin in STANDINS.values():
        raw = base / "raw" / standin.raw_dir
        if not raw.is_dir():
            standin.generate(raw, Sizes(train=2, eval=1))
        log: list[str] = []
        for split in standin.convert(raw, Options(root=base / "data", allow_partial=True,
                                                  log=log.append)):
            out[split.name] = split
    return out


def test_stand_ins_convert_at_true_size_with_their_edge_cases(converted: dict) -> None:
    voc = converted["voc07_test"].coco
    assert (voc["images"][0]["width"], voc["images"][0]["height"]) == (500, 375)
    assert any(a.get("difficult") == 1 for a in voc["annotations"])
    assert len(converted["voc0712_trainval"].coco["images"]) == 2
    city = converted["cityscapes_val"].coco
    assert (city["images"][0]["width"], city["images"][0]["height"]) == (2048, 1024)
    assert all("segmentation" in a for a in city["annotations"])  # masks for Mask R-CNN
    assert any(a["iscrowd"] for a in city["annotations"])  # the cargroup region
    assert converted["foggy_cityscapes_val"].coco["annotations"] == city["annotations"]
    assert converted["bdd100k_val"].coco["images"][0]["width"] == 1280
    coco = converted["coco_val2017"].coco
    assert len(coco["categories"]) == 80 and coco["categories"][-1]["source_id"] == 90
    assert any(a["iscrowd"] for a in coco["annotations"])
    sketch = converted["coco_o_sketch"].coco  # categories listed in another order: same ids
    assert [c["name"] for c in sketch["categories"]] == [c["name"] for c in coco["categories"]]
    assert {"clipart_test", "watercolor_test", "comic_test", "coco_train2017"} <= set(converted)


@pytest.mark.parametrize("name", [
    "torchvision_resnet50",  # torchvision
    "msra_resnet50",  # msra_pkl: BGR statistics, stride in the 1x1 conv
    "augmix_resnet50",  # module_prefix
    "adv_l2_eps3_resnet50",  # robustness
    "efficientnet_b2_ra",  # timm
    "torchvision_efficientnet_b2",  # torchvision_efficientnet
    "swin_tiny",  # msft_swin
])
def test_structure_only_weights_load_through_the_real_converter(
        name: str, tmp_path: Path) -> None:
    real = catalogue.get(name)
    entry = standin_entry(real, tmp_path)
    assert entry.name == PREFIX + name and entry.converter == real.converter
    with catalogue.registered(entry):
        body = build_body(real.architecture, entry.name, None)
    report = body.weights_report
    assert (report.missing, report.unexpected, report.mismatched) == ((), (), ())
    assert body.channel_order == real.pixel_stats.channel_order
    assert body.pixel_mean == real.pixel_stats.mean


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convnext_base_1k", "torchvision_convnext_base",
                                  "vit_base_patch16_224_in21k_ft_in1k", "deit_base_patch16_224"])
def test_structure_only_weights_of_the_large_bodies(name: str, tmp_path: Path) -> None:
    test_structure_only_weights_load_through_the_real_converter(name, tmp_path)
