"""COCO 2017 pass-through and COCO-O domains: renumbering, iscrowd, repairs, bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmark.data.sources import Options, prepare_coco, prepare_coco_o
from benchmark.data.sources import common as C
from benchmark.data.sources.coco_o import COCO_O_DOMAINS
from benchmark.errors import DataError, MissingFileError
from benchmark.smoke.rawformats import write_coco_tree

CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 18, "name": "dog", "supercategory": "animal"},
    {"id": 99, "name": "unicorn", "supercategory": "myth"},
]
IMAGES = [
    {"id": 139, "file_name": "000000000139.jpg", "width": 64, "height": 48},
    {"id": 285, "file_name": "000000000285.jpg", "width": 40, "height": 60},
]
ANNOTATIONS = [
    {
        "id": 10,
        "image_id": 139,
        "category_id": 18,
        "bbox": [1.5, 2.25, 10, 20],
        "area": 150.5,
        "iscrowd": 0,
        "segmentation": [[1, 2, 3, 4, 5, 6]],
    },
    {
        "id": 11,
        "image_id": 139,
        "category_id": 1,
        "bbox": [0, 0, 64, 48],
        "area": 1000,
        "iscrowd": 1,
        "segmentation": {"counts": "abc", "size": [48, 64]},
    },
    {
        "id": 12,
        "image_id": 285,
        "category_id": 3,
        "bbox": [30, 50, 20, 20],
        "area": 200,
        "iscrowd": 0,
    },  # reaches x=50 > 40 and y=70 > 60: clipped to [30, 50, 10, 10]
    {
        "id": 13,
        "image_id": 285,
        "category_id": 3,
        "bbox": [5, 5, 0, 10],
        "area": 0,
        "iscrowd": 0,
    },  # zero width
    {
        "id": 14,
        "image_id": 285,
        "category_id": 99,
        "bbox": [1, 1, 2, 2],
        "area": 4,
        "iscrowd": 0,
    },  # unknown category
    {
        "id": 15,
        "image_id": 777,
        "category_id": 1,
        "bbox": [1, 1, 2, 2],
        "area": 4,
        "iscrowd": 0,
    },  # unknown image
    {
        "id": 16,
        "image_id": 285,
        "category_id": 1,
        "bbox": [1, 1, "2", 2],
        "area": 4,
        "iscrowd": 0,
    },  # malformed bbox
    {"id": 17, "image_id": 285, "category_id": 1, "bbox": [0, 0, 40.00001, 60], "iscrowd": 0},
]  # 17: float noise is clipped silently; no area given -> box area 2400


def coco_doc() -> dict:
    return {
        "info": {"year": 2017},
        "licenses": [],
        "images": copy.deepcopy(IMAGES),
        "annotations": copy.deepcopy(ANNOTATIONS),
        "categories": copy.deepcopy(CATEGORIES),
    }


@pytest.fixture
def coco_root(tmp_path: Path) -> Path:
    raw = tmp_path / "coco"
    write_coco_tree(raw, "val2017", coco_doc())
    return raw


def partial(tmp_path: Path, **kw) -> Options:
    return Options(root=tmp_path / "data", allow_partial=True, log=lambda s: None, **kw)


def test_coco_val_pass_through(coco_root: Path, tmp_path: Path) -> None:
    split = prepare_coco(coco_root, partial(tmp_path), splits=["val2017"])[0]
    coco = split.coco
    assert split.name == "coco_val2017"
    assert [c["name"] for c in coco["categories"]] == list(C.COCO_CLASSES)
    assert [c["id"] for c in coco["categories"]] == list(range(1, 81))
    dog = coco["categories"][16]
    assert (dog["name"], dog["id"], dog["source_id"], dog["supercategory"]) == (
        "dog",
        17,
        18,
        "animal",
    )
    assert coco["categories"][1]["source_id"] is None  # bicycle: absent from this file
    assert [i["id"] for i in coco["images"]] == [139, 285]
    got = [
        (a["id"], a["image_id"], a["category_id"], a["bbox"], a["area"], a["iscrowd"])
        for a in coco["annotations"]
    ]
    assert got == [
        (10, 139, 17, [1.5, 2.25, 10, 20], 150.5, 0),
        (11, 139, 1, [0, 0, 64, 48], 1000, 1),
        (12, 285, 3, [30, 50, 10, 10], 200, 0),
        (17, 285, 1, [0, 0, 40, 60], 2400, 0),
    ]
    # instance masks are kept as given (Mask R-CNN engines decode them); 12 and 17 have none
    segms = {a["id"]: a.get("segmentation") for a in coco["annotations"]}
    assert segms == {10: [[1, 2, 3, 4, 5, 6]], 11: {"counts": "abc", "size": [48, 64]},
                     12: None, 17: None}
    m = split.manifest
    assert m["issues"] == {C.CLIPPED: 1, C.MALFORMED_OBJECT: 2, C.UNKNOWN_CLASS: 1, C.ZERO_AREA: 1}
    wheres = {i["where"] for i in json.loads((split.root / "issues.json").read_text())}
    assert wheres == {
        "annotations[2] (id 12)",
        "annotations[3] (id 13)",
        "annotations[4] (id 14)",
        "annotations[5] (id 15)",
        "annotations[6] (id 16)",
    }
    assert list(m["source_file_sha256"]) == ["annotations/instances_val2017.json"]
    assert m["image_root"] == str((coco_root / "val2017").resolve())


def test_coco_strict_counts_and_missing_split(
    coco_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DataError, match=r"coco_val2017: 5 annotation issue\(s\) under --strict"):
        prepare_coco(coco_root, partial(tmp_path, strict=True), splits=["val2017"])
    with pytest.raises(DataError, match=r"coco_val2017: 2 images, expected 5000"):
        prepare_coco(
            coco_root, Options(root=tmp_path / "data", log=lambda s: None), splits=["val2017"]
        )
    monkeypatch.setitem(C.EXPECTED_IMAGES, "coco_val2017", (2, "test"))
    assert (
        prepare_coco(
            coco_root, Options(root=tmp_path / "data", log=lambda s: None), splits=["val2017"]
        )[0].manifest["num_images"]
        == 2
    )
    with pytest.raises(MissingFileError, match=r"instances_train2017\.json: not found"):
        prepare_coco(coco_root, partial(tmp_path))  # default: both splits


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (
            lambda d: d["images"].append(dict(d["images"][0])),
            r"images\[2\]\.id=139: duplicate image id",
        ),
        (
            lambda d: d["annotations"].append(dict(d["annotations"][0])),
            r"annotations\[8\]\.id=10: duplicate annotation id",
        ),
        (lambda d: d["images"][1].pop("file_name"), r"images\[1\]\.file_name=None: missing"),
        (lambda d: d.pop("annotations"), r"annotations=None: missing required key"),
        (
            lambda d: d["categories"].append({"id": 3, "name": "bus"}),
            r"categories\[4\]\.id=3: duplicate id",
        ),
    ],
)
def test_coco_structural_errors(coco_root: Path, tmp_path: Path, mutate, pattern) -> None:
    doc = coco_doc()
    mutate(doc)
    (coco_root / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"instances_val2017\.json: " + pattern):
        prepare_coco(coco_root, partial(tmp_path), splits=["val2017"])


def test_coco_malformed_json_and_missing_image(coco_root: Path, tmp_path: Path) -> None:
    (coco_root / "val2017" / "000000000285.jpg").unlink()
    with pytest.raises(DataError, match=r"1 listed images missing .*000000000285\.jpg"):
        prepare_coco(
            coco_root, Options(root=tmp_path / "data", log=lambda s: None), splits=["val2017"]
        )
    split = prepare_coco(coco_root, partial(tmp_path), splits=["val2017"])[0]
    assert [a["id"] for a in split.coco["annotations"]] == [10, 11]
    assert split.manifest["issues"] == {C.MALFORMED_OBJECT: 1, C.MISSING_IMAGE: 1}
    (coco_root / "annotations" / "instances_val2017.json").write_text('{"images": [\n\n,]}')
    with pytest.raises(DataError, match=r"malformed JSON at line 3"):
        prepare_coco(coco_root, partial(tmp_path), splits=["val2017"])


@pytest.fixture
def coco_o_root(tmp_path: Path) -> Path:
    raw = tmp_path / "ood_coco"
    for domain in COCO_O_DOMAINS:
        doc = coco_doc()
        # COCO-O files list categories in another order: matched by name, not position
        doc["categories"] = list(reversed(doc["categories"][:3]))
        doc["annotations"] = [a for a in doc["annotations"] if a["id"] in (10, 11)]
        write_coco_tree(raw / domain, "val2017", doc)
    return raw


def test_coco_o_domains(coco_o_root: Path, tmp_path: Path) -> None:
    opts = Options(root=tmp_path / "data", strict=True, log=lambda s: None)
    with pytest.raises(DataError, match=r"coco_o: 12 images in all, expected 6782"):
        prepare_coco_o(coco_o_root, opts)
    two = prepare_coco_o(coco_o_root, opts, domains=["sketch", "tattoo"])  # total not checked
    assert [s.name for s in two] == ["coco_o_sketch", "coco_o_tattoo"]
    assert [s.manifest["domain"] for s in two] == ["sketch", "tattoo"]
    assert [(a["category_id"], a["bbox"]) for a in two[0].coco["annotations"]] == [
        (17, [1.5, 2.25, 10, 20]),
        (1, [0, 0, 64, 48]),
    ]
    assert two[1].manifest["image_root"] == str((coco_o_root / "tattoo" / "val2017").resolve())
    every = prepare_coco_o(coco_o_root, partial(tmp_path))
    assert len(every) == 6 and {s.manifest["dataset"] for s in every} == {"coco_o"}
    (coco_o_root / "weather" / "annotations" / "instances_val2017.json").unlink()
    with pytest.raises(MissingFileError, match="weather"):
        prepare_coco_o(coco_o_root, partial(tmp_path))
