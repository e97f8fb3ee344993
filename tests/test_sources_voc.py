"""Pascal VOC and Clipart/Watercolor/Comic converters on hand-built VOC trees.

Boxes are checked against hand-computed values under the documented convention (detectron2's):
VOC ``xmin..xmax`` (1-based, inclusive) -> COCO ``[xmin - 1, ymin - 1, xmax - xmin + 1, ...]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.data.sources import Options, prepare_cross_domain, prepare_voc
from benchmark.data.sources import common as C
from benchmark.data.split import load_split
from benchmark.errors import DataError, MissingFileError
from benchmark.smoke.rawformats import add_voc_image as add_image
from benchmark.smoke.rawformats import voc_object as obj
from benchmark.smoke.rawformats import write_image_set as write_set
from benchmark.smoke.rawformats import write_voc_xml as write_xml

AWKWARD = [
    obj("dog", (10, 5, 30, 20)),  # -> [9, 4, 21, 16]
    obj("person", (1, 1, 64, 48), difficult=1),  # whole image, difficult -> [0, 0, 64, 48]
    obj("cat", (50, 40, 70, 48)),  # xmax beyond width 64 -> clipped to [49, 39, 15, 9]
    obj("unicorn", (1, 1, 5, 5)),  # unknown class -> dropped
    obj("car", (20, 5, 19, 9)),  # xmax < xmin -> zero area, dropped
    obj("bird", None),  # no <bndbox> -> malformed, dropped
    obj("bus", (100, 1, 120, 10)),  # entirely right of the image -> dropped
    obj(" sheep ", (2, 3, 2, 3)),  # whitespace around the name; a 1x1-pixel box [1, 2, 1, 1]
]


@pytest.fixture
def devkit(tmp_path: Path) -> Path:
    raw = tmp_path / "VOCdevkit"
    v07 = raw / "VOC2007"
    add_image(v07, "000001", (64, 48), AWKWARD)
    add_image(v07, "000002", (40, 30), [obj("horse", (1, 1, 40, 30))], xml_size=None)
    add_image(v07, "000003", (32, 32), [obj("tvmonitor", (5, 6, 7, 8))])
    add_image(
        v07,
        "000004",
        (50, 40),
        [obj("chair", (3, 4, 13, 24), difficult=1), obj("chair", (20, 4, 30, 24))],
    )
    write_set(v07, "trainval", ["000001", "000002", "000003", "000003"])  # duplicate line 4
    write_set(v07, "test", ["000004"])
    v12 = raw / "VOC2012"
    add_image(v12, "2008_000001", (60, 45), [obj("aeroplane", (11, 12, 50, 40))])
    write_set(v12, "trainval", ["2008_000001"])
    return raw


def partial(tmp_path: Path, **kw) -> Options:
    return Options(root=tmp_path / "data", allow_partial=True, log=lambda s: None, **kw)


def by_file(split) -> dict[str, list[dict]]:
    coco = split.coco
    names = {i["id"]: i["file_name"] for i in coco["images"]}
    cats = {c["id"]: c["name"] for c in coco["categories"]}
    out: dict[str, list[dict]] = {n: [] for n in names.values()}
    for a in coco["annotations"]:
        out[names[a["image_id"]]].append({**a, "name": cats[a["category_id"]]})
    return out


def test_voc_boxes_difficult_and_repairs(devkit: Path, tmp_path: Path) -> None:
    splits = {s.name: s for s in prepare_voc(devkit, partial(tmp_path))}
    assert list(splits) == ["voc07_trainval", "voc12_trainval", "voc0712_trainval", "voc07_test"]
    tv = splits["voc07_trainval"]
    anns = by_file(tv)
    assert [i["file_name"] for i in tv.coco["images"]] == [
        "VOC2007/JPEGImages/000001.jpg",
        "VOC2007/JPEGImages/000002.jpg",
        "VOC2007/JPEGImages/000003.jpg",
    ]
    first = anns["VOC2007/JPEGImages/000001.jpg"]
    assert [(a["name"], a["bbox"], a["difficult"]) for a in first] == [
        ("dog", [9, 4, 21, 16], 0),
        ("person", [0, 0, 64, 48], 1),
        ("cat", [49, 39, 15, 9], 0),
        ("sheep", [1, 2, 1, 1], 0),
    ]
    assert [a["area"] for a in first] == [336, 3072, 135, 1]
    # size missing from the XML: read from the JPEG header (40x30) and reported
    img2 = tv.coco["images"][1]
    assert (img2["width"], img2["height"]) == (40, 30)
    assert anns["VOC2007/JPEGImages/000002.jpg"][0]["bbox"] == [0, 0, 40, 30]
    assert anns["VOC2007/JPEGImages/000003.jpg"][0]["bbox"] == [4, 5, 3, 3]
    m = tv.manifest
    assert m["num_images"] == 3 and m["num_boxes"] == 6
    assert m["per_class_boxes"]["dog"] == 1 and m["per_class_boxes"]["car"] == 0
    assert m["classes"] == list(C.VOC_CLASSES)
    assert m["image_root"] == str(devkit.resolve())
    assert m["issues"] == {
        C.CLIPPED: 1,
        C.DUPLICATE_IMAGE: 1,
        C.MALFORMED_OBJECT: 1,
        C.OUTSIDE: 1,
        C.SIZE_FROM_HEADER: 1,
        C.UNKNOWN_CLASS: 1,
        C.ZERO_AREA: 1,
    }
    assert m["source_files"] == 4 and len(m["source_sha256"]) == 64  # list + 3 XMLs
    issues = json.loads((tv.root / "issues.json").read_text())
    where = {(Path(i["file"]).name, i["where"], i["kind"]) for i in issues}
    assert ("000001.xml", "object[3] (unicorn)", C.UNKNOWN_CLASS) in where
    assert ("000001.xml", "object[2] (cat)", C.CLIPPED) in where
    assert ("000001.xml", "object[4] (car)", C.ZERO_AREA) in where
    assert ("000001.xml", "object[5] (bird)", C.MALFORMED_OBJECT) in where
    assert ("trainval.txt", "line 4", C.DUPLICATE_IMAGE) in where
    # the split loads and validates (every image exists under the raw root)
    assert (
        load_split("voc07_trainval", tmp_path / "data")
        .image_path("VOC2007/JPEGImages/000001.jpg")
        .is_file()
    )


def test_voc0712_concatenates_and_test_keeps_difficult(devkit: Path, tmp_path: Path) -> None:
    splits = {s.name: s for s in prepare_voc(devkit, partial(tmp_path))}
    both = splits["voc0712_trainval"].coco
    assert [i["id"] for i in both["images"]] == [1, 2, 3, 4]
    assert both["images"][3]["file_name"] == "VOC2012/JPEGImages/2008_000001.jpg"
    assert both["annotations"][-1]["bbox"] == [10, 11, 40, 29]
    assert splits["voc0712_trainval"].manifest["num_boxes"] == 7
    test = splits["voc07_test"].coco
    assert [(a["bbox"], a["difficult"]) for a in test["annotations"]] == [
        ([2, 3, 11, 21], 1),
        ([19, 3, 11, 21], 0),
    ]
    assert splits["voc07_test"].manifest["issues"] == {}


def test_voc_count_mismatch_is_an_error_unless_partial(devkit: Path, tmp_path: Path) -> None:
    opts = Options(root=tmp_path / "data", log=lambda s: None)
    with pytest.raises(DataError, match=r"voc07_test: 1 images, expected 4952"):
        prepare_voc(devkit, opts, splits=["voc07_test"])
    assert not (tmp_path / "data" / "voc07_test").exists()


def test_voc_exact_counts_pass_without_partial(
    devkit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(C.EXPECTED_IMAGES, "voc07_test", (1, "test"))
    out = prepare_voc(
        devkit, Options(root=tmp_path / "data", log=lambda s: None), splits=["voc07_test"]
    )
    assert out[0].manifest["num_images"] == 1


def test_voc_strict_turns_repairs_into_errors(devkit: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        prepare_voc(devkit, partial(tmp_path, strict=True), splits=["voc07_trainval"])
    msg = str(e.value)
    assert "\n" not in msg and "--strict" in msg and "7 annotation issue(s)" in msg
    assert "trainval.txt: line 4" in msg
    # the clean test set passes under --strict
    out = prepare_voc(devkit, partial(tmp_path, strict=True), splits=["voc07_test"])
    assert out[0].manifest["num_boxes"] == 2


def test_voc_missing_image_and_annotation(devkit: Path, tmp_path: Path) -> None:
    v07 = devkit / "VOC2007"
    (v07 / "JPEGImages" / "000003.jpg").unlink()
    (v07 / "Annotations" / "000002.xml").unlink()
    with pytest.raises(DataError, match=r"1 listed images missing .*000003\.jpg"):
        prepare_voc(
            devkit, Options(root=tmp_path / "data", log=lambda s: None), splits=["voc07_trainval"]
        )
    out = prepare_voc(devkit, partial(tmp_path), splits=["voc07_trainval"])
    m = out[0].manifest
    assert m["num_images"] == 1
    assert m["issues"][C.MISSING_IMAGE] == 1 and m["issues"][C.MISSING_ANNOTATION] == 1
    # --allow-partial governs missing files; --strict only annotation repairs
    with pytest.raises(DataError, match="--strict"):
        prepare_voc(devkit, partial(tmp_path, strict=True), splits=["voc07_trainval"])


def test_voc_malformed_xml_names_file_and_line(devkit: Path, tmp_path: Path) -> None:
    bad = devkit / "VOC2007" / "Annotations" / "000003.xml"
    bad.write_text("<annotation>\n<size><width>32</width>\n</annotation>\n")
    with pytest.raises(DataError, match=r"000003\.xml: malformed XML at line 3"):
        prepare_voc(devkit, partial(tmp_path), splits=["voc07_trainval"])


def test_voc_missing_folder(tmp_path: Path) -> None:
    raw = tmp_path / "VOCdevkit"
    (raw / "VOC2007").mkdir(parents=True)
    with pytest.raises(MissingFileError, match=r"VOC2007/Annotations: not found"):
        prepare_voc(raw, partial(tmp_path), splits=["voc07_test"])
    with pytest.raises(MissingFileError, match="VOCdevkit"):
        prepare_voc(tmp_path / "nowhere", partial(tmp_path))


def test_verify_images_checks_headers(devkit: Path, tmp_path: Path) -> None:
    v07 = devkit / "VOC2007"
    # the XML claims 64x48, the JPEG is 60x40: the header wins and the box is clipped to it
    add_image(v07, "000005", (60, 40), [obj("cow", (1, 1, 64, 48))], xml_size=(64, 48))
    (v07 / "JPEGImages" / "000006.jpg").write_bytes(b"not a jpeg")
    write_xml(v07 / "Annotations" / "000006.xml", (10, 10), [obj("cow", (1, 1, 5, 5))])
    write_set(v07, "test", ["000004", "000005", "000006"])
    plain = prepare_voc(devkit, partial(tmp_path), splits=["voc07_test"])[0]
    assert plain.manifest["num_images"] == 3  # headers not read by default
    out = prepare_voc(devkit, partial(tmp_path, verify_images=True), splits=["voc07_test"])[0]
    assert out.manifest["num_images"] == 2
    assert out.manifest["issues"] == {C.CLIPPED: 1, C.SIZE_MISMATCH: 1, C.UNREADABLE_IMAGE: 1}
    img = out.coco["images"][1]
    assert (img["width"], img["height"]) == (60, 40)
    assert out.coco["annotations"][-1]["bbox"] == [0, 0, 60, 40]


def test_cross_domain_watercolor_uses_all_voc_categories(tmp_path: Path) -> None:
    raw = tmp_path / "watercolor"
    add_image(
        raw, "142090457", (48, 36), [obj("person", (2, 2, 20, 30)), obj("dog", (21, 10, 48, 36))]
    )
    add_image(
        raw,
        "1000",
        (36, 48),
        [obj("bird", (1, 1, 36, 48), difficult=1), obj("dragon", (1, 1, 3, 3))],
    )
    add_image(raw, "2000", (40, 40), [])  # in the train list only
    write_set(raw, "test", ["142090457", "1000"])
    write_set(raw, "train", ["2000"])
    split = prepare_cross_domain("watercolor", raw, partial(tmp_path))[0]
    assert split.name == "watercolor_test"
    coco = split.coco
    assert [c["name"] for c in coco["categories"]] == list(C.VOC_CLASSES)
    assert [(a["category_id"], a["bbox"]) for a in coco["annotations"]] == [
        (15, [1, 1, 19, 29]),
        (12, [20, 9, 28, 27]),
        (3, [0, 0, 36, 48]),
    ]
    assert coco["annotations"][2]["difficult"] == 1
    assert split.manifest["issues"] == {C.UNKNOWN_CLASS: 1}
    assert split.manifest["annotated_classes"] == ["bicycle", "bird", "car", "cat", "dog", "person"]
    assert split.manifest["domain"] == "watercolor"
    with pytest.raises(DataError, match=r"watercolor_test: 2 images, expected 1000"):
        prepare_cross_domain("watercolor", raw, Options(root=tmp_path / "d2", log=lambda s: None))


def test_cli_prepare_voc(devkit: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import benchmark.data.sources  # noqa: F401  (registers the preparers)
    from benchmark.prepare import main

    root = tmp_path / "cli"
    rc = main(
        [
            "voc",
            "--raw",
            str(devkit),
            "--data-root",
            str(root),
            "--allow-partial",
            "--splits",
            "voc07_test",
        ]
    )
    out = capsys.readouterr()
    assert rc == 0 and "voc07_test: 1 images, 2 boxes" in out.out
    rc = main(
        [
            "voc",
            "--raw",
            str(devkit),
            "--data-root",
            str(root),
            "--allow-partial",
            "--strict",
            "--splits",
            "voc07_trainval",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert "object[" in err[0] or "line 4" in err[0]
    rc = main(["voc", "--raw", str(devkit), "--data-root", str(root), "--splits", "voc99"])
    assert rc == 2 and "unknown splits" in capsys.readouterr().err


def test_cli_corruptions_of_the_eval_split(
    devkit: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import benchmark.data.sources  # noqa: F401
    from benchmark.prepare import main

    root = tmp_path / "cli"
    rc = main(
        [
            "voc",
            "--raw",
            str(devkit),
            "--data-root",
            str(root),
            "--allow-partial",
            "--splits",
            "voc07_trainval,voc07_test",
            "--corruptions",
            "gaussian_noise",
            "--severities",
            "2",
            "--workers",
            "1",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "voc07_test-C.gaussian_noise.2: 1 images, 2 boxes" in out
    assert "voc07_trainval-C" not in out  # training splits are never corrupted
    corrupted = load_split("voc07_test-C.gaussian_noise.2", root)
    assert corrupted.coco["annotations"] == load_split("voc07_test", root).coco["annotations"]
