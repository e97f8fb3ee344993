"""BDD100K val converter: both label formats, the class mapping onto Cityscapes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.data.sources import Options, prepare_bdd100k
from benchmark.data.sources import common as C
from benchmark.data.sources.bdd100k import BDD_TO_CITYSCAPES
from benchmark.errors import DataError
from benchmark.smoke.rawformats import bdd_box as box
from benchmark.smoke.rawformats import save_jpeg, write_bdd100k

DET20 = [
    {
        "name": "a.jpg",
        "attributes": {"weather": "clear"},
        "labels": [
            {"id": "1", "category": "pedestrian", "box2d": box(100.5, 200.25, 150.5, 300.75)},
            {"id": "2", "category": "motorcycle", "box2d": box(10, 20, 30, 60)},
            {"id": "3", "category": "traffic light", "box2d": box(1, 1, 5, 9)},  # not mapped
            {"id": "4", "category": "other person", "box2d": box(1, 1, 5, 9)},  # not mapped
            {"id": "5", "category": "bicycle", "box2d": box(1200, 600, 1300, 700)},  # clipped
            {"id": "6", "category": "dragon", "box2d": box(1, 1, 5, 9)},  # unknown
            {"id": "7", "category": "car"},  # no box2d: malformed
            {"id": "8", "category": "bus", "box2d": box(40, 40, 40, 80)},  # zero width
            {
                "id": "9",
                "category": "pedestrian",
                "attributes": {"crowd": True},
                "box2d": box(500, 300, 540, 380),
            },
        ],
    },
    {"name": "b.jpg", "attributes": {}},  # no objects at all: kept, no boxes
    {"name": "c.jpg", "labels": [{"category": "truck", "box2d": box(0, 0, 10, 10)}]},
]

# the 2018 release: person/motor/bike names, poly2d-only drivable areas and lanes
LEGACY = [
    {
        "name": "a.jpg",
        "labels": [
            {"category": "person", "box2d": box(1, 2, 11, 22), "id": 0},
            {"category": "motor", "box2d": box(3, 4, 13, 24), "id": 1},
            {"category": "bike", "box2d": box(5, 6, 15, 26), "id": 2},
            {"category": "rider", "box2d": box(7, 8, 17, 28), "id": 3},
            {"category": "drivable area", "poly2d": [{"vertices": [[0, 0], [1, 1]]}], "id": 4},
            {"category": "lane", "poly2d": [{"vertices": [[0, 0], [1, 1]]}], "id": 5},
        ],
    },
    {"name": "b.jpg", "labels": []},
    {"name": "c.jpg", "labels": None},
]


@pytest.fixture
def bdd(tmp_path: Path) -> Path:
    raw = tmp_path / "bdd100k"
    write_bdd100k(raw, DET20)
    return raw


def partial(tmp_path: Path, **kw) -> Options:
    return Options(root=tmp_path / "data", allow_partial=True, log=lambda s: None, **kw)


def named(split) -> list[tuple]:
    cats = {c["id"]: c["name"] for c in split.coco["categories"]}
    files = {i["id"]: i["file_name"] for i in split.coco["images"]}
    return [
        (files[a["image_id"]], cats[a["category_id"]], a["iscrowd"], a["bbox"])
        for a in split.coco["annotations"]
    ]


def test_mapping_covers_cityscapes_classes() -> None:
    assert set(BDD_TO_CITYSCAPES.values()) == set(C.CITYSCAPES_CLASSES)


def test_bdd_det20(bdd: Path, tmp_path: Path) -> None:
    split = prepare_bdd100k(bdd, partial(tmp_path))[0]
    assert split.name == "bdd100k_val"
    assert [c["name"] for c in split.coco["categories"]] == list(C.CITYSCAPES_CLASSES)
    assert [(i["file_name"], i["width"], i["height"]) for i in split.coco["images"]] == [
        ("a.jpg", 1280, 720),
        ("b.jpg", 1280, 720),
        ("c.jpg", 1280, 720),
    ]
    assert named(split) == [
        ("a.jpg", "person", 0, [100.5, 200.25, 50, 100.5]),
        ("a.jpg", "motorcycle", 0, [10, 20, 20, 40]),
        ("a.jpg", "bicycle", 0, [1200, 600, 80, 100]),
        ("a.jpg", "person", 1, [500, 300, 40, 80]),
        ("c.jpg", "truck", 0, [0, 0, 10, 10]),
    ]
    m = split.manifest
    assert m["unmapped_boxes"] == {"other person": 1, "traffic light": 1}
    assert m["issues"] == {C.CLIPPED: 1, C.MALFORMED_OBJECT: 1, C.UNKNOWN_CLASS: 1, C.ZERO_AREA: 1}
    assert m["image_root"] == str((bdd / "images" / "100k" / "val").resolve())
    assert m["source_files"] == 1 and list(m["source_file_sha256"]) == [
        "labels/det_20/det_val.json"
    ]
    issues = json.loads((split.root / "issues.json").read_text())
    assert {i["where"] for i in issues} == {
        "[0].labels[4] (a.jpg)",
        "[0].labels[5] (a.jpg)",
        "[0].labels[6] (a.jpg)",
        "[0].labels[7] (a.jpg)",
    }
    with pytest.raises(DataError, match=r"bdd100k_val: 4 annotation issue\(s\) under --strict"):
        prepare_bdd100k(bdd, partial(tmp_path, strict=True))


def test_bdd_legacy_format(bdd: Path, tmp_path: Path) -> None:
    legacy = bdd / "labels" / "bdd100k_labels_images_val.json"
    legacy.write_text(json.dumps(LEGACY))
    (bdd / "labels" / "det_20" / "det_val.json").unlink()
    split = prepare_bdd100k(bdd, partial(tmp_path, strict=True))[0]
    assert [(n, c, b) for n, c, _, b in named(split)] == [
        ("a.jpg", "person", [1, 2, 10, 20]),
        ("a.jpg", "motorcycle", [3, 4, 10, 20]),
        ("a.jpg", "bicycle", [5, 6, 10, 20]),
        ("a.jpg", "rider", [7, 8, 10, 20]),
    ]
    assert split.manifest["unmapped_boxes"] == {"drivable area": 1, "lane": 1}
    assert split.manifest["label_file"] == "bdd100k_labels_images_val.json"


def test_bdd_missing_images_counts_and_duplicates(bdd: Path, tmp_path: Path) -> None:
    (bdd / "images" / "100k" / "val" / "c.jpg").unlink()
    save_jpeg(bdd / "images" / "100k" / "val" / "zzz.jpg", 64, 36)
    with pytest.raises(DataError, match=r"1 listed images missing .*c\.jpg"):
        prepare_bdd100k(bdd, Options(root=tmp_path / "data", log=lambda s: None))
    msgs: list[str] = []
    split = prepare_bdd100k(
        bdd, Options(root=tmp_path / "data", allow_partial=True, log=msgs.append)
    )[0]
    assert split.manifest["num_images"] == 2
    assert split.manifest["issues"][C.MISSING_IMAGE] == 1
    assert any(
        "expected 10000" in m and "extra (on disk, not annotated): zzz.jpg" in m for m in msgs
    )
    dup = bdd / "dup.json"
    dup.write_text(json.dumps([{"name": "a.jpg"}, {"name": "b.jpg"}, {"name": "a.jpg"}]))
    with pytest.raises(DataError, match=r"dup\.json: \[2\]\.name='a\.jpg': duplicate image"):
        prepare_bdd100k(bdd, partial(tmp_path), labels=dup)


def test_bdd_bad_files(bdd: Path, tmp_path: Path) -> None:
    bad = bdd / "labels" / "det_20" / "det_val.json"
    bad.write_text('[\n {"name": "a.jpg",\n  "labels": [}\n]')
    with pytest.raises(DataError, match=r"det_val\.json: malformed JSON at line 3"):
        prepare_bdd100k(bdd, partial(tmp_path))
    bad.unlink()
    with pytest.raises(DataError, match="no BDD100K val labels found"):
        prepare_bdd100k(bdd, partial(tmp_path))


def test_bdd_verify_images(bdd: Path, tmp_path: Path) -> None:
    save_jpeg(bdd / "images" / "100k" / "val" / "b.jpg", 640, 360)  # not the BDD size
    split = prepare_bdd100k(bdd, partial(tmp_path, verify_images=True))[0]
    assert split.coco["images"][1]["width"] == 640
    assert split.manifest["issues"][C.SIZE_MISMATCH] == 1
