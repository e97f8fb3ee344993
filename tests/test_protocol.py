"""Protocol cards (benchmark.protocol_card): a run's card from its spec and family, the published
cards, the comparison, and the report's use of them (old records: card unknown)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchmark.families import FAMILIES, MICHAELIS_CARD, SAITO_CARD
from benchmark.grid import load_grid
from benchmark.protocol_card import UNKNOWN, card_of, check_published_card, compare_cards
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
    detector, inputs = card.pop("detector"), card.pop("input")
    # frcnn_fpn_small (benchmark/models/torchvision_frcnn.py FRCNN_FPN_SMALL): P3-P5, 64
    # channels, anchors 16-128, RPN 600/300 → 300/150, 128 RoIs, 256-d FCs, score 0.01
    assert detector["fpn"] == "P3-P5 + max-pooled P6, 64 channels, sum fusion"
    assert detector["anchors"].startswith("sizes 16/32/64/128 (one per level)")
    assert "strides 8/16/32/64" in detector["anchors"]
    assert detector["rpn"].startswith("pre-NMS top 600/300 per level, post-NMS top 300/150")
    assert detector["box_head"].startswith("2 FC x 256, class-specific deltas with a "
                                           "background box")
    assert detector["sampler"] == "RPN 256 anchors at 0.5 positive; RoI 128 at 0.25 " \
        "positive, IoU 0.5"
    assert detector["test"] == "score > 0.01, NMS 0.5, 100 per image"
    assert inputs == {"channel_order": "weights", "pixel_stats": "weights",
                      "bn": "frozen (the checkpoint's statistics)",
                      "resize": "torchvision GeneralizedRCNNTransform: bilinear on float, "
                                "size floor"}
    assert card == {  # benchmark/grids/demo.yaml, the demo family (COCO protocol only)
        "train_sizes": [160], "max_size": 160, "test_size": 160,
        "schedule": {"iterations": 120, "batch_size": 4, "lr": 0.005, "policy": "onecycle",
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
    assert text.startswith("not comparable: detector.fpn P3-P5 + max-pooled P6, 64 channels")
    for part in ("detector.anchors ", "detector.rpn ", "detector.roi_pooler ",
                 "detector.box_head ", "detector.sampler ", "detector.test ",
                 "input.bn trained (no pretrained statistics)≠frozen after one train-mode",
                 "train_sizes [160]≠480…800 (11 values)", "max_size 160≠1333",
                 "test_size 160≠800", "schedule.iterations 120≠80000",
                 "schedule.batch_size 4≠2", "schedule.lr 0.005≠0.0025",
                 "schedule.policy onecycle≠step", "schedule.steps []≠[50000,70000]",
                 "schedule.warmup_iters 0≠500", "evaluator.ap.id coco≠voc07",
                 "evaluator.ap.ood coco≠voc", "evaluator.summary coco≠voc"):
        assert part in text, part
    # Saito et al. publish no corruption sweep: the demo's is not held against it
    assert "corruption" not in text


STUDY = replace(PASCAL, backbone=replace(PASCAL.backbone, study_compat=True))


@pytest.mark.parametrize("engine", ["frcnn_fpn", "detectron2"])
def test_the_studys_cell_is_comparable_and_one_change_is_named(engine: str) -> None:
    """With ``study_compat`` the Pascal cell is fed as mind_back fed it, and its card equals
    Saito et al.'s on the torchvision engine with detectron2's geometry and on detectron2
    itself (the card states the detector, not the engine's name)."""
    study = replace(STUDY, engine=engine)
    assert compare_cards(card_of(study).to_json(), SAITO_CARD) == (True,
                                                                    "comparable: cards equal")
    short = replace(study, schedule=replace(study.schedule, iterations=300))
    assert compare_cards(card_of(short).to_json(), SAITO_CARD) == (
        False, "not comparable: schedule.iterations 300≠80000")


def test_the_corrected_input_pipeline_is_named_against_saito() -> None:
    """Without ``study_compat`` the suite feeds RGB weights RGB, keeps the checkpoint's
    BatchNorm statistics and resizes with torchvision: the comparison names exactly those
    three input fields and nothing of the detector."""
    ok, text = compare_cards(card_of(PASCAL).to_json(), SAITO_CARD)
    assert not ok
    fields = [part.split(" ")[0] for part in text.removeprefix("not comparable: ").split("; ")
              if part.startswith(("detector.", "input.", "schedule", "train", "test", "max"))]
    assert fields == ["input.channel_order", "input.bn", "input.resize"]
    assert "input.channel_order weights≠reversed" in text


def test_a_bgr_checkpoint_is_fed_as_trained_even_under_study_compat() -> None:
    """mind_back feeds BGR: the MSRA caffe ResNet-50 (trained on BGR) receives its own
    order, so only an RGB checkpoint is "reversed"."""
    msra = replace(STUDY, backbone=BackboneSpec("resnet50", "msra_resnet50", study_compat=True))
    assert card_of(msra).input.channel_order == "weights"
    assert card_of(STUDY).input.channel_order == "reversed"


def test_mind_back_cells_state_saitos_detector_on_both_engines() -> None:
    """One cell of the study's grid on ``frcnn_fpn`` and on ``detectron2``: both cards'
    detector fields equal Saito's; the demo-size engine's do not."""
    grid = load_grid("mind_back_pascal", resolve_data=False, check_weights=False)
    cell = grid.runs[0]
    for engine in ("frcnn_fpn", "detectron2"):
        assert card_of(replace(cell, engine=engine)).to_json()["detector"] == \
            SAITO_CARD["detector"], engine
    for engine in ("frcnn_fpn_small", "detectron2_small"):
        assert card_of(replace(cell, engine=engine)).to_json()["detector"] != \
            SAITO_CARD["detector"], engine


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
    fields = [part.split(" ")[0] for part in text.removeprefix("not comparable: ").split("; ")]
    assert fields == ["detector.rpn", "detector.roi_pooler", "detector.box_head",
                      "detector.losses", "train_sizes", "schedule.iterations",
                      "schedule.steps", "schedule.warmup_iters"]
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
    new["protocol"] = card_of(replace(STUDY, recipe=RecipeSpec("dp"))).to_json()
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
