"""Protocol cards (benchmark.protocol): a run's card from its spec and family, the published
cards, the comparison, and the report's use of them (old records: card unknown)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.families import FAMILIES, MICHAELIS_CARD, SAITO_CARD
from benchmark.grid import load_grid
from benchmark.protocol import UNKNOWN, card_of, check_published_card, compare_cards
from benchmark.spec import BackboneSpec, CorruptionSpec, RecipeSpec, RunSpec, Schedule

# the study's Pascal cell, written out from configs/Pascal/base.yaml (not from SAITO_CARD)
PASCAL = RunSpec(
    family="pascal", engine="frcnn_fpn", backbone=BackboneSpec("resnet50", "swsl_resnet50"),
    recipe=RecipeSpec("ft"), train_split="voc0712_trainval", id_split="voc07_test",
    ood_splits=("clipart_test", "watercolor_test", "comic_test"), corruption=None,
    schedule=Schedule(iterations=80000, batch_size=2, lr=0.0025, policy="step",
                      steps=(50000, 70000), warmup_iters=500,
                      train_sizes=(480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800),
                      test_size=800, max_size=1333),
    seed=0,
)


def _demo_cells() -> dict[str, RunSpec]:
    grid = load_grid("demo", resolve_data=False)  # imagenet / none weights: no file needed
    return {f"{s.backbone.name}/{s.recipe.name}": s for s in grid.runs}


def test_card_of_a_demo_cell() -> None:
    cells = _demo_cells()
    card = card_of(cells["efficientnet_lite0/ft"]).to_json()
    assert card == {  # benchmark/grids/demo.yaml, the demo family (COCO protocol only)
        "engine": "frcnn_fpn_small", "train_sizes": [160], "max_size": 160, "test_size": 160,
        "schedule": {"iterations": 180, "batch_size": 4, "lr": 0.01, "policy": "onecycle",
                     "steps": [], "warmup_iters": 0},
        "evaluator": {"ap": {"id": "coco", "ood": "coco", "clean": "coco",
                             "corrupted": "coco"}, "summary": "coco"},
        "corruption": {"channel_order": "rgb", "severities": [3]},
    }
    # DP's recipe lr (0.02) is the lr its training uses
    assert card_of(cells["efficientnet_lite0/dp"]).schedule.lr == 0.02


def test_published_cards_name_only_card_fields() -> None:
    for fam in FAMILIES.in_order():
        for row in fam.published:
            assert row.card is not None, (fam.name, row.backbone)
            check_published_card(row.card, f"{fam.name}: {row.backbone}")
    with pytest.raises(Exception, match="schedule.iters"):
        check_published_card({"schedule": {"iters": 1}}, "typo")


def test_demo_card_against_saito_names_the_differing_fields() -> None:
    ok, text = compare_cards(card_of(_demo_cells()["resnet18/ft"]).to_json(), SAITO_CARD)
    assert not ok
    assert text.startswith("not comparable: engine frcnn_fpn_small≠frcnn_fpn, ")
    for part in ("train_sizes [160]≠480…800 (11 values)", "max_size 160≠1333",
                 "test_size 160≠800", "schedule.iterations 180≠80000",
                 "schedule.batch_size 4≠2", "schedule.lr 0.01≠0.0025",
                 "schedule.policy onecycle≠step", "schedule.steps []≠[50000,70000]",
                 "schedule.warmup_iters 0≠500", "evaluator.ap.id coco≠voc07",
                 "evaluator.ap.ood coco≠voc", "evaluator.summary coco≠voc"):
        assert part in text, part
    # Saito et al. publish no corruption sweep: the demo's is not held against it
    assert "corruption" not in text


def test_the_studys_cell_is_comparable_and_one_change_is_named() -> None:
    assert compare_cards(card_of(PASCAL).to_json(), SAITO_CARD) == (True,
                                                                     "comparable: cards equal")
    short = replace(PASCAL, schedule=replace(PASCAL.schedule, iterations=300))
    assert compare_cards(card_of(short).to_json(), SAITO_CARD) == (
        False, "not comparable: schedule.iterations 300≠80000")


def test_coco_c_cell_against_michaelis() -> None:
    """The suite's COCO-C grid runs detectron2's 1x schedule; the published baseline is
    mmdetection v1's 1x (12 epochs, steps at 8 / 11): engine and schedule differ, the
    evaluator and the BGR sweep at severities 1-5 do not."""
    spec = RunSpec(
        family="coco_c", engine="frcnn_fpn", backbone=BackboneSpec("resnet50", "none"),
        recipe=RecipeSpec("ft"), train_split="coco_train2017", id_split="coco_val2017",
        ood_splits=(), corruption=CorruptionSpec("coco_val2017", ("fog",), (1, 2, 3, 4, 5),
                                                 "bgr"),
        schedule=Schedule(iterations=90000, batch_size=16, lr=0.02, policy="step",
                          steps=(60000, 80000), warmup_iters=1000,
                          train_sizes=(640, 672, 704, 736, 768, 800)),
        seed=0,
    )
    ok, text = compare_cards(card_of(spec).to_json(), MICHAELIS_CARD)
    assert not ok
    fields = [part.split(" ")[0] for part in text.removeprefix("not comparable: ").split(", ")]
    assert fields == ["engine", "train_sizes", "schedule.iterations", "schedule.steps",
                      "schedule.warmup_iters"]
    rgb = replace(spec, corruption=replace(spec.corruption, channel_order="rgb"))
    assert "corruption.channel_order rgb≠bgr" in compare_cards(card_of(rgb).to_json(),
                                                               MICHAELIS_CARD)[1]
    clean = replace(spec, corruption=None)
    assert "corruption.severities none≠1…5 (5 values)" in compare_cards(
        card_of(clean).to_json(), MICHAELIS_CARD)[1]


def test_a_record_without_a_card_is_never_comparable() -> None:
    assert compare_cards(None, SAITO_CARD) == (False, UNKNOWN)
    assert compare_cards({}, SAITO_CARD) == (False, UNKNOWN)


def test_report_prints_cards_and_gates_the_delta(tmp_path: Path) -> None:
    from benchmark.report import build
    from benchmark.report.options import Options
    from tests.report.test_frames import make_record, write_record

    res = tmp_path / "results"
    ood = {"clipart_test": 0.12, "watercolor_test": 0.20, "comic_test": 0.08}
    old = make_record(family="pascal", backbone="resnet50", weights="swsl_resnet50",
                      recipe="ft", id_ap=0.52, ood=ood, corruption={}, id_split="voc07_test")
    write_record(res, old)  # no "protocol": written before cards
    new = make_record(family="pascal", backbone="resnet50", weights="swsl_resnet50",
                      recipe="dp", id_ap=0.45, ood=ood, corruption={}, id_split="voc07_test")
    new["protocol"] = card_of(replace(PASCAL, recipe=RecipeSpec("dp"))).to_json()
    write_record(res, new)
    md = build.build_report(Options(res, tmp_path / "BENCHMARKS.md", n_resamples=0)).markdown
    section = md[md.index("### Protocol card (Pascal"):md.index("### Published reference rows")]
    assert "| `schedule.iterations` | 80000 | 80000 |" in section  # run card | Saito's
    assert "1 run record carries no protocol card" in section
    lines = md[md.index("### Published reference rows (Pascal"):].splitlines()
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines
            if ln.startswith("| ResNet-50 (Instagram SWSL)")]
    ft = next(r for r in rows if r[1] == "ft")
    dp = next(r for r in rows if r[1] == "dp")
    assert ft[-2] == UNKNOWN and "Δ" not in "".join(ft[2:-3])
    assert dp[-2] == "comparable: cards equal" and "(Δ " in dp[2]
