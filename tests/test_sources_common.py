"""Shared converter policy: clipping, the expected-count table, list options, registration."""

from __future__ import annotations

import pytest

from benchmark.data.sources import common as C
from benchmark.errors import DataError


@pytest.mark.parametrize(
    ("box", "expected", "kind"),
    [
        ((1, 2, 30, 40), (1, 2, 30, 40), None),  # inside
        ((0, 0, 64, 48), (0, 0, 64, 48), None),  # exactly the image
        ((-5, 2, 30, 50), (0, 2, 30, 48), C.CLIPPED),
        ((0, 0, 64.005, 48), (0, 0, 64, 48), None),  # float noise: clipped silently
        ((10, 10, 10, 20), None, C.ZERO_AREA),
        ((10, 20, 15, 5), None, C.ZERO_AREA),  # inverted
        ((70, 0, 80, 10), None, C.OUTSIDE),
        ((-10, -10, 0, 5), None, C.OUTSIDE),  # touches the border only
    ],
)
def test_sanitize_xyxy(box, expected, kind) -> None:
    log = C.IssueLog()
    assert C.sanitize_xyxy(box, 64, 48, log, "f.xml", "object[0]") == expected
    assert [i.kind for i in log.items] == ([kind] if kind else [])
    if kind:
        assert log.items[0].line().startswith("f.xml: object[0]: box xyxy=")


def test_expected_counts_table_covers_every_split() -> None:
    names = {
        "voc07_trainval",
        "voc12_trainval",
        "voc0712_trainval",
        "voc07_test",
        "clipart_test",
        "watercolor_test",
        "comic_test",
        "cityscapes_train",
        "cityscapes_val",
        "foggy_cityscapes_val",
        "bdd100k_val",
        "coco_train2017",
        "coco_val2017",
    }
    assert set(C.EXPECTED_IMAGES) == names
    n = {k: v[0] for k, v in C.EXPECTED_IMAGES.items()}
    assert n["voc0712_trainval"] == n["voc07_trainval"] + n["voc12_trainval"]
    assert n["foggy_cityscapes_val"] == n["cityscapes_val"]
    assert C.EXPECTED_TOTALS["coco_o"][0] == 6782


def test_parse_list_arg() -> None:
    assert C.parse_list_arg(None, ["a", "b", "c"], "splits") == ["a", "b", "c"]
    assert C.parse_list_arg("c, a", ["a", "b", "c"], "splits") == ["a", "c"]
    with pytest.raises(DataError, match=r"--splits='a,z': unknown splits \['z'\]"):
        C.parse_list_arg("a,z", ["a", "b", "c"], "splits")


def test_every_dataset_registers_a_preparer_with_arguments() -> None:
    import argparse

    import benchmark.data.sources  # noqa: F401
    from benchmark.data import PREPARER_ARGUMENTS, PREPARERS

    names = [
        "voc",
        "clipart",
        "watercolor",
        "comic",
        "cityscapes",
        "foggy_cityscapes",
        "bdd100k",
        "coco",
        "coco_o",
    ]
    for name in names:
        assert name in PREPARERS
        parser = argparse.ArgumentParser()
        PREPARER_ARGUMENTS[name](parser)
        args = parser.parse_args(["--raw", "/x", "--strict", "--allow-partial"])
        assert args.strict and args.allow_partial and not args.verify_images
        assert (PREPARERS.get(name).__doc__ or "").strip()
