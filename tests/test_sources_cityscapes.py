"""Cityscapes / Foggy Cityscapes converter on a hand-built gtFine tree.

Boxes are the extent of each instance's visible pixels after later polygons overwrite earlier
ones (cityscapesScripts' draw order, which detectron2's loader reproduces), as continuous
coordinates ``[xmin, ymin, xmax + 1, ymax + 1]``; every expected box below is computed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.data.sources import Options, prepare_cityscapes, prepare_foggy_cityscapes
from benchmark.data.sources import common as C
from benchmark.data.sources.cityscapes import foggy_split_name, resolve_label
from benchmark.errors import DataError, MissingFileError
from benchmark.smoke.rawformats import rect_polygon as rect
from benchmark.smoke.rawformats import save_png
from benchmark.smoke.rawformats import write_cityscapes_polygons as write_gt

FRANKFURT = "frankfurt/frankfurt_000000_000294"
LINDAU = "lindau/lindau_000001_000019"


OBJECTS = [
    {"label": "road", "polygon": rect(0, 20, 63, 31)},
    {"label": "person", "polygon": rect(10, 5, 20, 25)},  # right part hidden by the car
    {"label": "car", "polygon": rect(15, 0, 40, 31)},
    {"label": "license plate", "polygon": rect(5, 5, 14, 10)},  # id -1: never drawn
    {"label": "persongroup", "polygon": [[45, 2], [55, 2], [50, 12]]},  # crowd, triangle
    {"label": "rider", "polygon": rect(0, 0, 5, 5)},  # fully covered by the building
    {"label": "building", "polygon": rect(0, 0, 8, 8)},
    {"label": "bicycle", "polygon": rect(58, 26, 70, 40)},  # leaves the 64x32 image
    {"label": "car", "polygon": rect(0, 0, 63, 31), "deleted": 1},  # ignored entirely
    {"label": "unicorn", "polygon": rect(1, 1, 3, 3)},  # unknown label
    {"label": "truck", "polygon": [[1, 1], [5, 5]]},  # malformed: 2 points
    {"label": "caravan", "polygon": rect(30, 0, 35, 3)},  # ignoreInEval: occludes only
    {"label": "cargroup", "polygon": rect(42, 20, 44, 22)},
]

# (class, iscrowd, [x, y, w, h]) by hand:
# person: pixels x 10..20, y 5..25; the car (drawn later) covers x >= 15 -> x 10..14.
#   (had the license plate been drawn, rows 5..10 would be gone: [10, 11, 5, 15])
# car: x 15..40, y 0..31 (the caravan hides only a corner) -> [15, 0, 26, 32]
# persongroup: triangle extents x 45..55, y 2..12 -> [45, 2, 11, 11]
# bicycle: x 58..70 clipped to 58..63, y 26..40 clipped to 26..31 -> [58, 26, 6, 6]
# cargroup: x 42..44, y 20..22 -> [42, 20, 3, 3]
EXPECTED_FRANKFURT = [
    ("person", 0, [10, 5, 5, 21]),
    ("car", 0, [15, 0, 26, 32]),
    ("person", 1, [45, 2, 11, 11]),
    ("bicycle", 0, [58, 26, 6, 6]),
    ("car", 1, [42, 20, 3, 3]),
]


@pytest.fixture
def cityscapes(tmp_path: Path) -> Path:
    raw = tmp_path / "cityscapes"
    write_gt(raw, "val", FRANKFURT, OBJECTS, (64, 32))
    save_png(raw / "leftImg8bit" / "val" / f"{FRANKFURT}_leftImg8bit.png", 64, 32)
    # no imgWidth/imgHeight: the size comes from the PNG header (and is reported)
    write_gt(raw, "val", LINDAU, [{"label": "car", "polygon": [[0, 0], [47, 23], [0, 23]]}], None)
    save_png(raw / "leftImg8bit" / "val" / f"{LINDAU}_leftImg8bit.png", 48, 24)
    write_gt(
        raw,
        "train",
        "aachen/aachen_000000_000019",
        [{"label": "bus", "polygon": rect(2, 3, 9, 7)}],
        (16, 16),
    )
    save_png(
        raw / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000019_leftImg8bit.png", 16, 16
    )
    for stem, (w, h) in ((FRANKFURT, (64, 32)), (LINDAU, (48, 24))):
        save_png(
            raw / "leftImg8bit_foggy" / "val" / f"{stem}_leftImg8bit_foggy_beta_0.02.png", w, h
        )
    save_png(
        raw / "leftImg8bit_foggy" / "val" / f"{FRANKFURT}_leftImg8bit_foggy_beta_0.01.png", 64, 32
    )
    return raw


def partial(tmp_path: Path, **kw) -> Options:
    return Options(root=tmp_path / "data", allow_partial=True, log=lambda s: None, **kw)


def boxes(split, image_index: int) -> list[tuple]:
    coco = split.coco
    iid = coco["images"][image_index]["id"]
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    return [
        (cats[a["category_id"]], a["iscrowd"], a["bbox"])
        for a in coco["annotations"]
        if a["image_id"] == iid
    ]


def test_resolve_label_follows_detectron2() -> None:
    assert resolve_label("car") == ("car", False)
    assert resolve_label("cargroup") == ("car", True)
    assert resolve_label("polegroup") == ("polegroup", False)  # a label of its own
    assert resolve_label("unicorngroup") is None and resolve_label("unicorn") is None


def test_cityscapes_boxes_by_hand(cityscapes: Path, tmp_path: Path) -> None:
    train, val = prepare_cityscapes(cityscapes, partial(tmp_path))
    assert (train.name, val.name) == ("cityscapes_train", "cityscapes_val")
    assert [c["name"] for c in val.coco["categories"]] == list(C.CITYSCAPES_CLASSES)
    assert val.coco["images"][0]["file_name"] == f"val/{FRANKFURT}_leftImg8bit.png"
    assert (val.coco["images"][0]["width"], val.coco["images"][0]["height"]) == (64, 32)
    assert boxes(val, 0) == EXPECTED_FRANKFURT
    assert (val.coco["images"][1]["width"], val.coco["images"][1]["height"]) == (48, 24)
    assert boxes(val, 1) == [("car", 0, [0, 0, 48, 24])]
    assert boxes(train, 0) == [("bus", 0, [2, 3, 8, 5])]
    m = val.manifest
    assert m["occluded_dropped"] == 1  # the rider under the building: not an issue
    assert m["issues"] == {C.MALFORMED_OBJECT: 1, C.SIZE_FROM_HEADER: 1, C.UNKNOWN_CLASS: 1}
    assert m["per_class_boxes"] == {
        "person": 2,
        "rider": 0,
        "car": 3,
        "truck": 0,
        "bus": 0,
        "train": 0,
        "motorcycle": 0,
        "bicycle": 1,
    }
    assert m["image_root"] == str((cityscapes / "leftImg8bit").resolve())
    assert m["source_files"] == 2
    issues = json.loads((val.root / "issues.json").read_text())
    assert {(i["where"], i["kind"]) for i in issues} >= {
        ("objects[9] (unicorn)", C.UNKNOWN_CLASS),
        ("objects[10] (truck)", C.MALFORMED_OBJECT),
    }


def test_cityscapes_strict_and_counts(
    cityscapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DataError, match=r"cityscapes_val: 3 annotation issue\(s\) under --strict"):
        prepare_cityscapes(cityscapes, partial(tmp_path, strict=True), splits=["val"])
    # the train split is clean; its count (1 of 2975) is an error without --allow-partial
    strict = Options(root=tmp_path / "data", strict=True, log=lambda s: None)
    with pytest.raises(DataError, match=r"cityscapes_train: 1 images, expected 2975"):
        prepare_cityscapes(cityscapes, strict, splits=["train"])
    monkeypatch.setitem(C.EXPECTED_IMAGES, "cityscapes_train", (1, "test"))
    assert prepare_cityscapes(cityscapes, strict, splits=["train"])[0].manifest["num_images"] == 1


def test_cityscapes_missing_and_extra_images(cityscapes: Path, tmp_path: Path) -> None:
    (cityscapes / "leftImg8bit" / "val" / f"{LINDAU}_leftImg8bit.png").unlink()
    save_png(
        cityscapes / "leftImg8bit" / "val" / "lindau" / "lindau_000099_000019_leftImg8bit.png", 8, 8
    )
    opts = Options(root=tmp_path / "data", log=lambda s: None)
    with pytest.raises(DataError, match=r"1 listed images missing .*lindau_000001_000019"):
        prepare_cityscapes(cityscapes, opts, splits=["val"])
    msgs: list[str] = []
    out = prepare_cityscapes(
        cityscapes,
        Options(root=tmp_path / "data", allow_partial=True, log=msgs.append),
        splits=["val"],
    )[0]
    assert out.manifest["num_images"] == 1
    warning = next(m for m in msgs if "expected 500" in m)
    assert "missing: val/lindau/lindau_000001_000019" in warning
    assert "extra (on disk, not annotated): val/lindau/lindau_000099_000019" in warning


def test_cityscapes_malformed_json(cityscapes: Path, tmp_path: Path) -> None:
    bad = cityscapes / "gtFine" / "val" / f"{LINDAU}_gtFine_polygons.json"
    bad.write_text('{"imgWidth": 48,\n "objects": [\n  {"label": "car",}\n]}')
    with pytest.raises(
        DataError,
        match=r"lindau_000001_000019_gtFine_polygons\.json: malformed "
        r"JSON at line 3",
    ):
        prepare_cityscapes(cityscapes, partial(tmp_path), splits=["val"])
    bad.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected an object with an 'objects' list"):
        prepare_cityscapes(cityscapes, partial(tmp_path), splits=["val"])


def test_cityscapes_missing_folder(tmp_path: Path) -> None:
    raw = tmp_path / "cs"
    (raw / "leftImg8bit").mkdir(parents=True)
    with pytest.raises(MissingFileError, match=r"gtFine/val: not found"):
        prepare_cityscapes(raw, partial(tmp_path), splits=["val"])


def test_foggy_cityscapes_same_boxes_foggy_images(cityscapes: Path, tmp_path: Path) -> None:
    foggy = prepare_foggy_cityscapes(cityscapes, partial(tmp_path))[0]
    val = prepare_cityscapes(cityscapes, partial(tmp_path), splits=["val"])[0]
    assert foggy.name == "foggy_cityscapes_val" and foggy.manifest["beta"] == 0.02
    assert foggy.manifest["domain"] == "foggy"
    assert (
        foggy.coco["images"][0]["file_name"] == f"val/{FRANKFURT}_leftImg8bit_foggy_beta_0.02.png"
    )
    assert foggy.coco["annotations"] == val.coco["annotations"]
    assert foggy.image_path(foggy.coco["images"][1]["file_name"]).is_file()
    # beta 0.01: a suffixed name; only one of the two images exists
    with pytest.raises(DataError, match=r"1 listed images missing"):
        prepare_foggy_cityscapes(
            cityscapes, Options(root=tmp_path / "data", log=lambda s: None), beta=0.01
        )
    other = prepare_foggy_cityscapes(cityscapes, partial(tmp_path), beta=0.01)[0]
    assert other.name == foggy_split_name(0.01) == "foggy_cityscapes_val_beta0.01"
    assert other.manifest["num_images"] == 1 and other.manifest["beta"] == 0.01
    assert boxes(other, 0) == EXPECTED_FRANKFURT
