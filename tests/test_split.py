"""split.py's validation: every malformed COCO file is rejected with file, field and value."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark.data import write_png
from benchmark.data.split import load_split, validate_coco, write_split
from benchmark.errors import DataError
from benchmark.spec import corrupted_split_name, parse_corrupted_split_name

SOURCE = "/data/x/annotations.json"


def _coco() -> dict[str, Any]:
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 40, "height": 30},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 5], "area": 50,
             "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0.5, 0, 3.5, 4], "area": 14,
             "iscrowd": 0, "difficult": 1},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "cup"}],
    }  # fmt: skip


def _error(coco: Any) -> str:
    with pytest.raises(DataError) as info:
        validate_coco(coco, SOURCE)
    return str(info.value)


def test_valid_coco_passes() -> None:
    validate_coco(_coco(), SOURCE)


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_top_level_key(key: str) -> None:
    coco = _coco()
    del coco[key]
    assert _error(coco) == f"{SOURCE}: {key}=None: missing required key"


@pytest.mark.parametrize(
    ("section", "index", "key"),
    [("images", 1, "file_name"), ("images", 0, "width"), ("annotations", 1, "bbox"),
     ("annotations", 0, "category_id"), ("categories", 1, "name")],
)  # fmt: skip
def test_missing_record_field(section: str, index: int, key: str) -> None:
    coco = _coco()
    del coco[section][index][key]
    assert _error(coco) == f"{SOURCE}: {section}[{index}].{key}=None: missing"


@pytest.mark.parametrize("section", ["images", "annotations", "categories"])
def test_duplicate_ids(section: str) -> None:
    coco = _coco()
    coco[section][1]["id"] = coco[section][0]["id"]
    assert _error(coco) == f"{SOURCE}: {section}[1].id=1: duplicate id"


@pytest.mark.parametrize(
    ("bbox", "shown"),
    [([1, 2, 0, 5], "[1, 2, 0, 5]"), ([1, 2, 10, -1], "[1, 2, 10, -1]"),
     ([1, 2, 0.0, 0.0], "[1, 2, 0.0, 0.0]")],
)  # fmt: skip
def test_non_positive_box_size(bbox: list[float], shown: str) -> None:
    coco = _coco()
    coco["annotations"][1]["bbox"] = bbox
    assert _error(coco) == f"{SOURCE}: annotations[1].bbox={shown}: width and height must be > 0"


def test_malformed_bbox() -> None:
    coco = _coco()
    coco["annotations"][0]["bbox"] = [1, 2, 3]
    assert _error(coco) == f"{SOURCE}: annotations[0].bbox=[1, 2, 3]: expected [x,y,w,h]"


def test_unknown_category_id() -> None:
    coco = _coco()
    coco["annotations"][1]["category_id"] = 7
    assert _error(coco) == f"{SOURCE}: annotations[1].category_id=7: unknown category id"


def test_unknown_image_id() -> None:
    coco = _coco()
    coco["annotations"][0]["image_id"] = 99
    assert _error(coco) == f"{SOURCE}: annotations[0].image_id=99: unknown image id"


@pytest.mark.parametrize("value", [0, -4, 12.5, "40"])
def test_bad_image_size(value: object) -> None:
    coco = _coco()
    coco["images"][1]["width"] = value
    assert _error(coco) == f"{SOURCE}: images[1].width={value!r}: must be a positive int"


def test_not_an_object_and_not_lists() -> None:
    assert _error([1, 2]) == f"{SOURCE}: <root>='list': expected an object"
    coco = _coco()
    coco["images"] = {}
    assert _error(coco) == f"{SOURCE}: images='dict': expected a list"


# ---------------------------------------------------------------------------- load_split


def _write_split(root: Path, coco: dict[str, Any] | None = None) -> Path:
    coco = coco or _coco()
    for img in coco["images"]:
        write_png(root / "s" / "images" / img["file_name"], np.zeros((30, 40, 3), np.uint8))
    write_split("s", coco, dataset="t", domain="photo", root=root)
    return root / "s"


def test_write_then_load_roundtrip(tmp_path: Path) -> None:
    out = _write_split(tmp_path)
    split = load_split("s", tmp_path)
    assert split.coco == _coco()
    m = split.manifest
    assert (m["num_images"], m["num_boxes"], m["classes"]) == (2, 2, ["cat", "cup"])
    assert m["per_class_boxes"] == {"cat": 1, "cup": 1}
    assert split.image_path("a.png") == (out / "images" / "a.png").resolve()


def test_write_split_refuses_invalid_coco_and_writes_nothing(tmp_path: Path) -> None:
    coco = _coco()
    coco["annotations"][0]["bbox"] = [0, 0, 0, 1]
    with pytest.raises(DataError, match=r"annotations\[0\]\.bbox"):
        write_split("s", coco, dataset="t", domain="photo", root=tmp_path)
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_missing_image_file_names_file_field_and_value(tmp_path: Path) -> None:
    out = _write_split(tmp_path)
    (out / "images" / "b.png").unlink()
    with pytest.raises(DataError) as info:
        load_split("s", tmp_path)
    where = f"{out / 'annotations.json'}: images[1].file_name='b.png'"
    assert str(info.value).startswith(f"{where}: image not found")
    assert load_split("s", tmp_path, check_images=False).name == "s"


def test_missing_manifest_says_how_to_prepare(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"prepared split 'nope' not found.*benchmark\.prepare"):
        load_split("nope", tmp_path)


def test_malformed_annotation_json_names_the_file(tmp_path: Path) -> None:
    out = _write_split(tmp_path)
    (out / "annotations.json").write_text('{"images": [')
    with pytest.raises(DataError, match=rf"^{out / 'annotations.json'}: malformed JSON"):
        load_split("s", tmp_path)


def test_load_split_validates_annotations(tmp_path: Path) -> None:
    out = _write_split(tmp_path)
    coco = copy.deepcopy(_coco())
    coco["annotations"][1]["category_id"] = 3
    (out / "annotations.json").write_text(json.dumps(coco))
    with pytest.raises(DataError) as info:
        load_split("s", tmp_path)
    assert str(info.value) == (
        f"{out / 'annotations.json'}: annotations[1].category_id=3: unknown category id"
    )


def test_corrupted_split_names_roundtrip() -> None:
    name = corrupted_split_name("demo_test", "gaussian_noise", 3)
    assert name == "demo_test-C.gaussian_noise.3"
    assert parse_corrupted_split_name(name) == ("demo_test", "gaussian_noise", 3)
    assert parse_corrupted_split_name("demo_test") is None
    assert parse_corrupted_split_name("x-C.fog.high") is None
