"""DetectionDataset: targets in torchvision's format, pixels as on disk, and on-the-fly
corruption equal to the materialised -C split."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from benchmark.data import pixel_sha256, read_rgb, write_png
from benchmark.data.corrupt import build_corrupted_splits
from benchmark.data.demo import build_demo
from benchmark.data.loader import DetectionDataset, collate
from benchmark.data.split import PreparedSplit, write_split
from benchmark.errors import ConfigError
from benchmark.store import remove_stray_temp_files


@pytest.fixture
def hand_split(tmp_path: Path) -> PreparedSplit:
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (40, 50), "b.png": (36, 33)}.items():
        write_png(tmp_path / "s" / "images" / name, rng.integers(0, 256, (h, w, 3), np.uint8))
    coco = {
        "images": [{"id": 7, "file_name": "a.png", "width": 50, "height": 40},
                   {"id": 9, "file_name": "b.png", "width": 33, "height": 36}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 2, "bbox": [1, 2, 10, 5], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0.5, 3, 4.5, 6], "iscrowd": 0},
            {"id": 3, "image_id": 7, "category_id": 1, "bbox": [5, 5, 5, 5], "difficult": 1},
            {"id": 4, "image_id": 7, "category_id": 2, "bbox": [9, 9, 3, 3], "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "cup"}],
    }  # fmt: skip
    return write_split("s", coco, dataset="t", domain="photo", root=tmp_path)


def test_targets_and_pixels(hand_split: PreparedSplit) -> None:
    ds = DetectionDataset(hand_split)
    assert len(ds) == 2
    image, target = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, 40, 50)
    pixels = read_rgb(hand_split.image_path("a.png"))
    torch.testing.assert_close(image, torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert target["image_id"] == 7
    # xyxy; difficult boxes trained on, crowd boxes left out (as detectron2)
    assert target["boxes"].dtype == torch.float32
    assert target["boxes"].tolist() == [[1, 2, 11, 7], [0.5, 3, 5, 9], [5, 5, 10, 10]]
    assert target["labels"].dtype == torch.int64 and target["labels"].tolist() == [2, 1, 1]


def test_image_without_boxes(hand_split: PreparedSplit) -> None:
    image, target = DetectionDataset(hand_split)[1]
    assert image.shape == (3, 36, 33) and target["image_id"] == 9
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)


def test_collate_and_dataloader(hand_split: PreparedSplit) -> None:
    loader = DataLoader(DetectionDataset(hand_split), batch_size=2, collate_fn=collate)
    images, targets = next(iter(loader))
    assert [tuple(i.shape) for i in images] == [(3, 40, 50), (3, 36, 33)]
    assert [t["image_id"] for t in targets] == [7, 9]


def test_unknown_corruption_is_rejected(hand_split: PreparedSplit) -> None:
    with pytest.raises(ConfigError, match="unknown corruption 'fogg'"):
        DetectionDataset(hand_split, corruption=("fogg", 1))


@pytest.mark.parametrize("global_seed", [0, 4])
def test_on_the_fly_corruption_equals_materialised_split(tmp_path: Path, global_seed: int) -> None:
    test = build_demo(tmp_path, seed=1, n_train=1, n_test=3, progress=False)[1]
    names = ["impulse_noise", "glass_blur", "frost", "zoom_blur"]
    splits = build_corrupted_splits(test, names, [2], root=tmp_path, global_seed=global_seed,
                                    progress=False)  # fmt: skip
    clean = DetectionDataset(test)
    for name, split in zip(names, splits, strict=True):
        on_the_fly = DetectionDataset(test, corruption=(name, 2), global_seed=global_seed)
        materialised = DetectionDataset(split)
        for i in range(len(test.coco["images"])):
            np.testing.assert_array_equal(on_the_fly.load_array(i), materialised.load_array(i))
            (a, ta), (b, tb) = on_the_fly[i], materialised[i]
            assert torch.equal(a, b)
            assert torch.equal(ta["boxes"], tb["boxes"]) and ta["image_id"] == tb["image_id"]
            assert not torch.equal(a, clean[i][0])


def test_png_round_trip_is_lossless_and_atomic(tmp_path: Path) -> None:
    image = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    path = tmp_path / "sub" / "x.png"
    write_png(path, image)
    back = read_rgb(path)
    assert back.dtype == np.uint8 and back.flags.writeable
    np.testing.assert_array_equal(back, image)
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]  # no temp file left behind
    (path.parent / ".x.png.123.tmp").write_bytes(b"partial")
    assert remove_stray_temp_files(tmp_path) == 1 and path.exists()


def test_pixel_hash_covers_shape_and_pixels() -> None:
    image = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)  # 1x2x3
    expected = hashlib.sha256(b"1x2x3 uint8\n" + bytes([1, 2, 3, 4, 5, 6])).hexdigest()
    assert pixel_sha256(image) == expected
    assert pixel_sha256(image.reshape(2, 1, 3)) != expected
