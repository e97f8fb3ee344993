"""The detectron2 engine: the demo cell trains and evaluates on it, both engines see the same
backbone features, build detectors of the same size with the same anchors, and prepared
splits enter detectron2's catalogs under content-fingerprinted names.

Tests that need detectron2 take the ``detectron2`` fixture and are skipped, with the reason,
where it is not installed. Without it, grid validation must name what to install: that test
runs everywhere (detectron2's import is blocked in a subprocess).

Reference figures of the R50-FPN cell (21 classes with background) are detectron2's own, as
tests/test_engine_geometry.py derives them: 41,392,436 parameters, 41,170,036 trainable, 42
trainable body tensors; 242,991 anchors on an 800 × 1216 input (P2–P6).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torchvision
import yaml

from benchmark.models import build_detector
from benchmark.spec import BackboneSpec, RecipeSpec, RunSpec, Schedule
from tests.conftest import TESTS

REASON = ("detectron2 is not installed (optional; see docs/MODELS.md 'detectron2 engine' and "
          "https://detectron2.readthedocs.io/en/latest/tutorials/install.html)")


@pytest.fixture(scope="module")
def detectron2():
    return pytest.importorskip("detectron2", reason=REASON)


def _r50_cell(engine: str, weights: str) -> RunSpec:
    return RunSpec(
        family="pascal", engine=engine, backbone=BackboneSpec("resnet50", weights),
        recipe=RecipeSpec("ft"), train_split="voc0712_trainval", id_split="voc07_test",
        ood_splits=(), corruption=None,
        schedule=Schedule(iterations=1, batch_size=2, lr=0.0025, train_sizes=(800,),
                          test_size=800, max_size=1333),
        seed=0,
    )


@pytest.fixture(scope="module")
def r50_both(detectron2, tmp_path_factory: pytest.TempPathFactory):
    """The R50-FPN cell (20 object classes) on both engines, from one weights file."""
    path = tmp_path_factory.mktemp("w") / "r50.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), path)
    tv = build_detector(_r50_cell("frcnn_fpn", str(path)), 20).eval()
    d2 = build_detector(_r50_cell("detectron2", str(path)), 20).eval()
    return tv, d2


# ---- same detector ----------------------------------------------------------------------------
def test_parameter_counts_equal_the_torchvision_engine_and_detectron2(r50_both) -> None:
    tv, d2 = r50_both
    for model in (tv, d2):
        params = list(model.parameters())
        assert sum(p.numel() for p in params) == 41_392_436
        assert sum(p.numel() for p in params if p.requires_grad) == 41_170_036
        assert len(model.body_parameters()) == 42


def test_geometry_numbers_reach_detectron2s_heads(r50_both) -> None:
    _, d2 = r50_both
    rpn, roi = d2.model.proposal_generator, d2.model.roi_heads
    assert rpn.in_features == ["p2", "p3", "p4", "p5", "p6"]
    assert (rpn.pre_nms_topk, rpn.post_nms_topk) == ({True: 2000, False: 1000},
                                                    {True: 1000, False: 1000})
    assert rpn.nms_thresh == 0.7
    assert roi.in_features == ["p2", "p3", "p4", "p5"]
    assert (roi.batch_size_per_image, roi.positive_fraction) == (512, 0.25)
    out = roi.box_predictor
    assert (out.test_score_thresh, out.test_nms_thresh, out.test_topk_per_image) == (0.05, 0.5,
                                                                                     100)
    assert out.cls_score.out_features == 21 and out.bbox_pred.out_features == 80
    assert tuple(out.box2box_transform.weights) == (10.0, 10.0, 5.0, 5.0)


def test_same_input_same_backbone_features_and_anchors(r50_both) -> None:
    """Both engines turn an image into the same normalised tensor, the same body levels, and
    the same anchors, exactly (the torchvision engine's anchor generator steps by the level's
    own stride, 64 at P6 where torchvision's would take 800 // 13 = 61, and does not round
    its cell anchors)."""
    tv, d2 = r50_both
    torch.manual_seed(1)
    image = torch.rand(3, 800, 1216)
    with torch.no_grad():
        tv_images, _ = tv.model.transform([image])
        d2.transform.training = False
        d2.transform.min_size = (800,)
        d2_images = d2.model.preprocess_image(d2.inputs([image]))
        assert d2_images.tensor.shape == tv_images.tensors.shape == (1, 3, 800, 1216)
        torch.testing.assert_close(d2_images.tensor, tv_images.tensors, atol=1e-5, rtol=0)
        x = tv_images.tensors
        tv_levels, d2_levels = tv.body.levels(x), d2.model.backbone.bottom_up(x)
        assert list(d2_levels) == ["res2", "res3", "res4", "res5"]
        for a, b in zip(tv_levels.values(), d2_levels.values(), strict=True):
            assert torch.equal(a, b)
        tv_anchors = tv.model.rpn.anchor_generator(tv_images, list(tv.model.backbone(x).values()))
        feats = d2.model.backbone(x)
        rpn = d2.model.proposal_generator
        d2_anchors = rpn.anchor_generator([feats[f] for f in rpn.in_features])
    counts = [len(a) for a in d2_anchors]
    assert counts == [200 * 304 * 3, 100 * 152 * 3, 50 * 76 * 3, 25 * 38 * 3, 13 * 19 * 3]
    assert tv_anchors[0].shape == (sum(counts), 4) == (242_991, 4)
    tv_per_level = tv_anchors[0].split(counts)
    for level, (a, b) in enumerate(zip(tv_per_level, d2_anchors, strict=True)):
        assert torch.equal(a, b.tensor), level


# ---- training and evaluation ------------------------------------------------------------------
def _tiny_d2_grid(tmp_path: Path) -> Path:
    doc = yaml.safe_load((TESTS / "grids" / "tiny.yaml").read_text())
    exp = doc["experiments"][0]
    exp["schedule"].update(iterations=4, rgn_batches=1)
    exp.update(engine="detectron2_small", ood_splits=["demo_stylized"],
               corruption={"base": "demo_test", "names": ["fog"], "severities": [3]},
               backbones=[{"name": "efficientnet_lite0", "weights": "imagenet"}],
               recipes=[{"name": "ft"}, {"name": "dp", "lr": 0.02}])
    doc["name"] = "tiny_d2"
    path = tmp_path / "tiny_d2.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_demo_cell_trains_and_evaluates_on_detectron2(detectron2, bench_env: Path,
                                                      tmp_path: Path) -> None:
    """The demo cell (tiny schedule) runs end to end on detectron2: finite losses under
    detectron2's names, AP on every split; DP leaves every body weight at its pretrained
    value, FT moves the unfrozen stages and not the frozen stem."""
    from benchmark.grid import load_grid
    from benchmark.models.backbones import build_body
    from benchmark.run import main as run_main
    from benchmark.store import TrainingDir

    path = _tiny_d2_grid(tmp_path)
    assert run_main(["--grid", str(path), "--quiet", "--no-report"]) == 0
    grid = load_grid(str(path))
    by_recipe = {s.recipe.name: s for s in grid.cells()}
    for spec in by_recipe.values():
        rec = json.loads((bench_env / "runs" / spec.fingerprint / "record.json").read_text())
        assert set(rec["metrics"]) == {"demo_test", "demo_stylized", "demo_test-C.fog.3"}
        assert all(0 <= m["AP"] <= 100 for m in rec["metrics"].values())
    pre = build_body("efficientnet_lite0", "imagenet", None).state_dict()
    prefix = "model.backbone.bottom_up.body."

    def final(spec: RunSpec) -> dict:
        return torch.load(TrainingDir(spec.train_fingerprint).final, weights_only=False)

    dp, ft = final(by_recipe["dp"]), final(by_recipe["ft"])
    assert all(torch.equal(dp["model"][prefix + k], v) for k, v in pre.items())
    stem = [k for k in pre if k.startswith("stages.0.") and k.endswith("weight")]
    late = [k for k in pre if k.startswith("stages.4.") and k.endswith("weight")]
    assert stem and late
    assert all(torch.equal(ft["model"][prefix + k], pre[k]) for k in stem)
    assert any(not torch.equal(ft["model"][prefix + k], pre[k]) for k in late)
    losses = {k for entry in ft["log"] for k in entry} - {"iter", "loss", "lr"}
    assert losses == {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"}


def test_predictions_are_in_input_coordinates(detectron2) -> None:
    """Detections come back at the stored size, not at the test size: a 96 × 128 image is
    run at test size 160 (a 160 × 213 input, scale 160 / 96), and the returned boxes are the
    network's boxes divided by that scale."""
    from dataclasses import replace

    spec = replace(_r50_cell("detectron2_small", "none"),
                   backbone=BackboneSpec("resnet18", "none"),
                   schedule=Schedule(iterations=1, batch_size=1, lr=0.01, train_sizes=(160,),
                                     test_size=160, max_size=400))
    torch.manual_seed(0)
    model = build_detector(spec, 3)
    image = torch.rand(3, 96, 128)
    (out,) = model.predict([image])
    assert out["boxes"].shape[0] > 0  # untrained: scores near 1/4 pass the 0.01 threshold
    inputs = model.inputs([image])
    assert tuple(inputs[0]["image"].shape) == (3, 160, 213)
    with torch.no_grad():
        (raw,) = model.model.inference(inputs, do_postprocess=False)
    scale = torch.tensor([213 / 128, 160 / 96] * 2)
    torch.testing.assert_close(out["boxes"], raw.pred_boxes.tensor / scale, atol=0.05, rtol=0)
    assert float(out["boxes"][:, 2].max()) <= 128 and float(out["boxes"][:, 3].max()) <= 96
    assert torch.equal(out["labels"], raw.pred_classes)


def test_reg_ft_pulls_the_detectron2_body_back_to_its_start(detectron2) -> None:
    """reg_ft (distance weighting, c = 0.1) anchors every trainable body tensor by the
    engine's body-relative names: moving one by δ adds exactly δ · min(c, 1/lr) to its
    gradient (lr 0.01: 1/lr = 100, so c = 0.1 applies)."""
    from dataclasses import replace

    from benchmark.recipes import get_recipe

    spec = replace(_r50_cell("detectron2_small", "none"),
                   backbone=BackboneSpec("resnet18", "none"),
                   recipe=RecipeSpec.make("reg_ft", weighting="distance"),
                   schedule=Schedule(iterations=1, batch_size=1, lr=0.01, train_sizes=(96,),
                                     test_size=96, max_size=96))
    torch.manual_seed(0)
    model = build_detector(spec, 3)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = get_recipe(spec.recipe)
    recipe.configure(model, start, None)
    names = [n for n, _ in model.body_parameters()]
    assert len(recipe.anchors) == len(names) > 0
    name, p = model.body_parameters()[-1]
    with torch.no_grad():
        p.add_(0.5)
    image = torch.rand(3, 96, 96)
    target = {"boxes": torch.tensor([[10.0, 10.0, 60.0, 70.0]]), "labels": torch.tensor([2])}
    sum(model.losses([image], [target]).values()).backward()
    before = p.grad.clone()
    recipe.after_backward(model, 0.01)
    torch.testing.assert_close(p.grad - before, torch.full_like(p, 0.5 * 0.1))
    torch.testing.assert_close(p.detach() - model.body_state(start)[name], torch.full_like(p, 0.5))


# ---- catalogs ---------------------------------------------------------------------------------
def test_catalog_names_carry_the_split_content(detectron2, tiny_data_root: Path,
                                               tmp_path: Path) -> None:
    """The same split name with one box moved is another catalog entry; each entry reads its
    own boxes, with 0-based category ids."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from benchmark.data.split import load_split, write_split
    from benchmark.models.detectron2_engine import catalog_name, register_split

    old = load_split("demo_test", tiny_data_root)
    coco = json.loads(json.dumps(old.coco))
    coco["annotations"][0]["bbox"][0] += 1.0
    new = write_split("demo_test", coco, dataset="demo", domain="photo",
                      image_root=str(old.image_root), root=tmp_path)
    assert old.fingerprint != new.fingerprint
    names = register_split(old), register_split(new)
    assert names == (catalog_name(old), catalog_name(new))
    assert names[0] != names[1]
    assert names[0] == f"demo_test@{old.fingerprint[:16]}"
    assert register_split(old) == names[0]  # registering again: the same entry
    first = [DatasetCatalog.get(n)[0]["annotations"][0]["bbox"][0] for n in names]
    ann0 = old.coco["annotations"][0]
    assert first == [ann0["bbox"][0], ann0["bbox"][0] + 1.0]
    dicts = DatasetCatalog.get(names[0])
    n_classes = len(old.classes)
    assert {a["category_id"] for d in dicts for a in d["annotations"]} <= set(range(n_classes))
    assert MetadataCatalog.get(names[1]).thing_classes == new.classes


# ---- without detectron2 -----------------------------------------------------------------------
def test_grid_validation_without_detectron2_names_what_to_install(tmp_path: Path) -> None:
    """detectron2's import is blocked in a fresh interpreter: the suite still imports, a
    torchvision grid still validates, a detectron2 grid is a ConfigError naming the field,
    the package and its install documentation."""
    d2_grid = _tiny_d2_grid(tmp_path)
    code = textwrap.dedent(f"""
        import sys
        sys.modules["detectron2"] = None  # import detectron2 raises ImportError
        from benchmark.errors import ConfigError
        from benchmark.grid import load_grid
        assert load_grid({str(TESTS / "grids" / "tiny.yaml")!r}, resolve_data=False).runs
        try:
            load_grid({str(d2_grid)!r}, resolve_data=False)
        except ConfigError as e:
            print("CONFIG-ERROR", e)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=TESTS.parent, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("CONFIG-ERROR")]
    assert "engine='detectron2_small'" in line and "detectron2 is not importable" in line
    assert "https://detectron2.readthedocs.io/en/latest/tutorials/install.html" in line
    assert "frcnn_fpn" in line


def test_pascal_d2_grid_is_the_pascal_grid_on_detectron2() -> None:
    """mind_back_pascal_d2 differs from mind_back_pascal in its engine only, and carries the
    published schedule (mind_back configs/Pascal/base.yaml:16-26)."""
    grids = TESTS.parent / "benchmark" / "grids"
    d2 = yaml.safe_load((grids / "mind_back_pascal_d2.yaml").read_text())
    tv = yaml.safe_load((grids / "mind_back_pascal.yaml").read_text())
    assert (d2.pop("engine"), tv.pop("engine")) == ("detectron2", "frcnn_fpn")
    assert Schedule(**d2["schedule"]) == Schedule(**tv["schedule"])
    for key in ("backbones", "recipes", "seeds", "experiments"):
        assert d2[key] == tv[key], key
    s = d2["schedule"]
    assert (s["batch_size"], s["lr"], s["iterations"], s["steps"], s["warmup_iters"]) == (
        2, 0.0025, 80000, [50000, 70000], 500)
    assert (s["train_sizes"][0], s["train_sizes"][-1], len(s["train_sizes"])) == (480, 800, 11)
    assert s["test_size"] == 800
