"""Every registered family and summary metric is valid (timm-style: a new entry is tested the
day it is registered)."""

from __future__ import annotations

import math

import pytest

from benchmark.errors import ConfigError
from benchmark.evaluation.summary_metrics import (
    GROUPS,
    SUMMARY_METRICS,
    definitions,
    metric_entries,
)
from benchmark.families import FAMILIES, SPLIT_ROLES, Family


def test_the_benchmark_families_are_registered() -> None:
    assert [f.name for f in FAMILIES.in_order()] == [
        "pascal", "cityscapes", "coco_c", "coco_o", "demo"]


@pytest.mark.parametrize("name", FAMILIES.names())
def test_family_entry(name: str) -> None:
    fam = FAMILIES.get(name)
    assert fam.name == name and fam.title and fam.description
    assert {"train", "id"} <= set(fam.split_roles) <= set(SPLIT_ROLES)
    for key in (fam.headline, fam.er_x, fam.er_y):
        assert key in SUMMARY_METRICS, key
        assert SUMMARY_METRICS.get(key).per == ""  # a number per run, not a mapping
    assert fam.er_x != fam.er_y
    # the ER axes are recorded wherever the family's splits say they can be
    assert SUMMARY_METRICS.get(fam.er_y).group == ("ood" if fam.ood else "corruption")
    for row in fam.published:
        assert row.family == name and row.source
        for key, value in row.values.items():
            assert key in SUMMARY_METRICS or key in fam.domains, key
            assert math.isfinite(value)
        assert set(row.derived) <= set(row.values)


def test_ap_protocols_of_the_families() -> None:
    pascal = FAMILIES.get("pascal")
    assert pascal.ap_protocol("voc07_test") == "voc07"
    assert pascal.ap_protocol("voc07_test-C.fog.3") == "voc07"
    assert pascal.ap_protocol("clipart_test") == "voc"
    assert pascal.summary_protocol == "voc" and pascal.voc
    for name in ("demo", "cityscapes", "coco_c", "coco_o"):
        fam = FAMILIES.get(name)
        assert fam.ap_protocol("anything") is None and fam.summary_protocol == "coco"
    assert not FAMILIES.get("coco_c").ood and FAMILIES.get("coco_c").corruption


def test_invalid_family_entries_are_refused() -> None:
    with pytest.raises(ConfigError, match="split_roles"):
        Family("x", "X", "x", ("id",), "ood_mean", "id_ap", "ood_mean")
    with pytest.raises(ConfigError, match="ap_protocols"):
        Family("x", "X", "x", SPLIT_ROLES, "ood_mean", "id_ap", "ood_mean",
               ap_protocols=(("", "voc12"),))
    with pytest.raises(ConfigError, match="needs ap_protocols"):
        Family("x", "X", "x", SPLIT_ROLES, "ood_mean", "id_ap", "ood_mean",
               summary_protocol="voc")
    with pytest.raises(ConfigError, match="unknown benchmark family 'nope'"):
        FAMILIES.get("nope")


@pytest.mark.parametrize("key", [m.key for m in SUMMARY_METRICS.in_order()])
def test_metric_entry(key: str) -> None:
    m = SUMMARY_METRICS.get(key)
    assert m.key == key and m.label and m.definition.strip()
    assert m.group in GROUPS
    assert (m.compute is not None) == (m.source == "summary")
    assert m.fmt(0.1234) not in ("", "—") and m.fmt(None) == "—"
    assert m.fmt(float("nan")) == "—"
    if m.fmt.signed:
        assert m.fmt(0.01).startswith("+")
    if m.note:  # every placeholder of the note can be filled
        assert m.note.format(label=m.label, what="AP", split="s")
    # the definition is rendered in "Metric definitions"
    text = m.definition.replace("{baseline_recipe}", "ft")
    assert text in definitions("ft")
    if m.per:
        assert m.prefix.endswith("/")
        value = {"a": {"3": 0.5}} if m.per == "condition" else {"a": 0.5}
        assert m.columns(value) == {(f"{m.prefix}a/3" if m.per == "condition"
                                     else f"{m.prefix}a"): 0.5}


def test_metric_table_order_is_the_summary_order() -> None:
    keys = [m.key for m in metric_entries("summary")]
    assert keys == ["id_ap", "id_ap50", "ood", "ood_mean", "ood_mean_ap50", "gap",
                    "id_mask_ap", "ood_mask_mean", "P", "mPC", "rPC", "P50", "mPC50",
                    "rPC_class", "corruption"]
    assert [m.key for m in metric_entries("rgn")] == ["rgn", "rgn_l2"]
    defs = definitions("ft")
    assert defs[0].startswith("**AP, AP50, AP75**") and defs[1].startswith("**VOC protocols**")
    assert len(defs) == len(set(defs))
    assert "recipe `ft`" in next(d for d in defs if d.startswith("**ER**"))
