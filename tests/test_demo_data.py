"""The generated demo benchmark: deterministic, boxes equal to what was pasted, OOD domains
rendering the same scenes, idempotent builds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.data import pixel_sha256, read_rgb
from benchmark.data.demo import (
    CLASSES,
    MAX_HEIGHT,
    MIN_HEIGHT,
    SPLITS,
    Placement,
    Scene,
    build_demo,
    cutouts,
    paste,
    render_background,
    render_scene,
    sample_scene,
)
from benchmark.data.split import PreparedSplit, load_split
from benchmark.errors import ConfigError
from benchmark.prepare import main
from benchmark.store import sha256_lines

SMALL = {"n_train": 6, "n_test": 3, "n_corrupt": 2, "progress": False}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[PreparedSplit]:
    return build_demo(tmp_path_factory.mktemp("demo"), seed=0, **SMALL)


def _tree(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_paste_known_answer() -> None:
    canvas = np.zeros((20, 30, 3), np.uint8)
    mask = np.zeros((10, 8), bool)
    mask[2:7, 1:5] = True  # rows 2..6, columns 1..4
    mask[4, 6] = True  # one stray pixel widens the box to column 6
    rgb = np.full((10, 8, 3), 200, np.uint8)
    box = paste(canvas, rgb, mask, x=20, y=5)
    assert box == (21, 7, 6, 5)
    assert canvas.sum(axis=2).astype(bool).sum() == mask.sum()
    assert (canvas[7:12, 21:25] == 200).all() and canvas[9, 26].tolist() == [200, 200, 200]
    # Clipped at the canvas border: only the part that landed counts.
    canvas = np.zeros((20, 30, 3), np.uint8)
    assert paste(canvas, rgb, mask, x=-3, y=15) == (0, 17, 4, 3)
    assert paste(canvas, rgb, mask, x=40, y=0) is None


def test_scene_known_answer() -> None:
    """A cutout pasted at its native size lands exactly on its mask's extent."""
    label = CLASSES.index("cup")
    cut = cutouts()[label]
    h, w = cut.mask.shape
    size = 256
    placement = Placement(label, x=11, y=22, height=h, width=w, flip=True, gain=1.0)
    scene = Scene("brick", (0, 0, 512), 0, (1.0, 1.0, 1.0), (placement,))
    image, objects = render_scene(scene, size)
    assert len(objects) == 1
    (obj,) = objects
    assert obj.label == label and obj.box == (11, 22, w, h) and obj.area == int(cut.mask.sum())
    flipped_rgb, flipped_mask = cut.rgb[:, ::-1], cut.mask[:, ::-1]
    window = image[22 : 22 + h, 11 : 11 + w]
    np.testing.assert_array_equal(window[flipped_mask], flipped_rgb[flipped_mask])
    background = render_background(scene, size)
    untouched = background[22 : 22 + h, 11 : 11 + w][~flipped_mask]
    np.testing.assert_array_equal(window[~flipped_mask], untouched)
    assert obj.mask.sum() == cut.mask.sum()


def test_generated_boxes_are_the_pasted_extents() -> None:
    labels = set()
    for i in range(40):
        scene = sample_scene(np.random.default_rng([5, i]), 160)
        assert 1 <= len(scene.objects) <= 4
        image, objects = render_scene(scene, 160)
        assert image.shape == (160, 160, 3) and image.dtype == np.uint8
        for p, o in zip(scene.objects, objects, strict=True):
            x, y, w, h = o.box
            assert 0 <= x and 0 <= y and x + w <= 160 and y + h <= 160
            ys, xs = np.nonzero(o.mask)
            extent = (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            assert (x, y, w, h) == extent
            assert MIN_HEIGHT - 2 <= h <= p.height <= MAX_HEIGHT
            labels.add(o.label)
    assert labels == set(range(len(CLASSES))) and len(CLASSES) >= 4


def test_splits_and_annotations(built: list[PreparedSplit]) -> None:
    assert [s.name for s in built] == list(SPLITS)
    train, test, *ood, first = built
    assert train.manifest["num_images"] == 6 and test.manifest["num_images"] == 3
    assert train.classes == list(CLASSES)
    assert [c["id"] for c in train.coco["categories"]] == list(range(1, len(CLASSES) + 1))
    domains = [s.manifest["domain"] for s in built]
    assert domains == ["photo", "photo", "stylized", "sketch", "inked", "photo"]
    # the corruptions' base: the first test scenes (n_corrupt=2 here), pixels and boxes equal
    assert first.name == "demo_test10" and first.manifest["num_images"] == 2
    assert first.coco["images"] == test.coco["images"][:2]
    assert first.coco["annotations"] == [a for a in test.coco["annotations"]
                                         if a["image_id"] in (1, 2)]
    assert first.manifest["image_sha256"] == {
        k: v for k, v in test.manifest["image_sha256"].items()
        if k in {im["file_name"] for im in first.coco["images"]}}
    for split in ood:  # the same scenes and boxes, rendered differently
        assert split.coco == test.coco
        assert split.manifest["annotation_sha256"] == test.manifest["annotation_sha256"]
        assert split.manifest["images_sha256"] != test.manifest["images_sha256"]
    for split in built:
        loaded = load_split(split.name, split.root.parent)
        hashes = {}
        for img in loaded.coco["images"]:
            pixels = read_rgb(loaded.image_path(img["file_name"]))
            assert pixels.shape == (img["height"], img["width"], 3) == (160, 160, 3)
            hashes[img["file_name"]] = pixel_sha256(pixels)
        assert hashes == loaded.manifest["image_sha256"]
        assert loaded.manifest["images_sha256"] == sha256_lines(sorted(hashes.values()))
        for ann in loaded.coco["annotations"]:
            x, y, w, h = ann["bbox"]
            assert x >= 0 and y >= 0 and x + w <= 160 and y + h <= 160


def test_build_is_deterministic(built: list[PreparedSplit], tmp_path: Path) -> None:
    root = built[0].root.parent
    build_demo(tmp_path / "again", seed=0, **SMALL)
    assert _tree(tmp_path / "again") == _tree(root)
    other = build_demo(tmp_path / "other", seed=1, **SMALL)
    for a, b in zip(built, other, strict=True):
        assert a.manifest["images_sha256"] != b.manifest["images_sha256"]
    assert other[1].coco["annotations"] != built[1].coco["annotations"]


def test_build_is_idempotent(tmp_path: Path) -> None:
    splits = build_demo(tmp_path, seed=2, **SMALL)
    stamps = {s.name: (s.root / "manifest.json").stat().st_mtime_ns for s in splits}
    build_demo(tmp_path, seed=2, **SMALL)
    assert {s.name: (s.root / "manifest.json").stat().st_mtime_ns for s in splits} == stamps
    # Other test parameters rebuild the test-scene splits only; a damaged split is rebuilt.
    (tmp_path / "demo_sketch" / "images" / "000001.png").unlink()
    again = build_demo(tmp_path, seed=2, **{**SMALL, "n_test": 4})
    assert (again[0].root / "manifest.json").stat().st_mtime_ns == stamps["demo_train"]
    assert all(s.manifest["num_images"] == 4 for s in again[1:-1])
    assert again[-1].manifest["num_images"] == 2  # n_corrupt
    assert sorted(p.name for p in (tmp_path / "demo_sketch" / "images").iterdir()) == [
        f"{i:06d}.png" for i in range(1, 5)
    ]


def test_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="size=64"):
        build_demo(Path("/nonexistent"), size=64)


def test_cli_demo(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["demo", "--data-root", str(tmp_path), "--n-train", "2", "--n-test", "2",
               "--corruptions", "gaussian_noise,fog", "--severities", "2", "--workers", "1",
               "--quiet"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    for name in [*SPLITS, "demo_test10-C.gaussian_noise.2", "demo_test10-C.fog.2"]:
        assert f"{name}: 2 images" in out
        assert load_split(name, tmp_path).manifest["num_images"] == 2
