"""Adding a backbone, a recipe, a dataset or an engine is one file plus one registration line.

Each test writes the throwaway entry as a newcomer would (the code below is the whole
extension), registers it for the test only, runs a one-cell grid through ``benchmark.run``
(train, evaluate, record, report) and finds the entry's row on the rendered leaderboard.
(Families and summary metrics: ``tests/report/test_extension.py``.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator

from benchmark.data import PREPARERS
from benchmark.data.split import PreparedSplit, load_split, write_split
from benchmark.models import BACKBONES, ENGINES, Body, Detector, build_body
from benchmark.models.torchvision_frcnn import BodyWithFPN
from benchmark.recipes import RECIPES, Recipe
from benchmark.report.names import backbone_display, recipe_display
from benchmark.run import main as run_main

GRID = """\
name: extension
experiments:
  - family: demo
    engine: {engine}
    train_split: demo_train
    id_split: {id_split}
    ood_splits: [demo_sketch]
    schedule: {{iterations: 2, batch_size: 2, lr: 0.01, train_sizes: [128], test_size: 128,
                max_size: 128, checkpoint_every: 2, rgn_batches: 1, eval_batch_size: 4}}
    backbones: [{{name: {backbone}, weights: {weights}}}]
    recipes: [{{name: {recipe}}}]
"""


def _run_to_leaderboard(tmp_path: Path, **cell: str) -> tuple[dict, str]:
    """Run a one-cell grid; return its record and the BENCHMARKS.md rendered next to it."""
    cell = {
        "engine": "frcnn_fpn_small",
        "id_split": "demo_test",
        "backbone": "efficientnet_lite0",
        "weights": "imagenet",
        "recipe": "ft",
        **cell,
    }
    grid = tmp_path / "extension.yaml"
    grid.write_text(GRID.format(**cell))
    assert run_main(["--grid", str(grid), "--quiet"]) == 0
    results = Path(os.environ["BENCH_RESULTS"])
    (record_path,) = results.glob("runs/*/record.json")
    record = json.loads(record_path.read_text())
    return record, (results.parent / "BENCHMARKS.md").read_text()


def _rows(markdown: str) -> list[str]:
    demo = markdown.split("## Demo", 1)[1].split("\n## ", 1)[0]
    return [ln for ln in demo.splitlines() if ln.startswith("| 1 ")]


# ------------------------------------------------------------------------------- a backbone
class TinyConvBody(Body):
    """Four strided convs: stem (stride 4), then strides 8, 16 and 32."""

    def __init__(self) -> None:
        def conv(cin: int, cout: int, stride: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU())

        stages = [conv(3, 16, 4), conv(16, 24, 2), conv(24, 32, 2), conv(32, 32, 2)]
        super().__init__(stages, [24, 32, 32], default_freeze_at=1)


def tiny_conv(weights: str) -> Body:
    return TinyConvBody()


def test_a_new_backbone(bench_env: Path, tmp_path: Path) -> None:
    with BACKBONES.registered("tiny_conv", tiny_conv):
        body = build_body("tiny_conv", "none", None)
        assert not any(p.requires_grad for p in body.stages[0].parameters())  # freeze point
        record, md = _run_to_leaderboard(tmp_path, backbone="tiny_conv", weights="none")
    assert record["spec"]["backbone"]["name"] == "tiny_conv"
    assert record["rgn"]["rgn"] > 0  # measured over the new body's trainable tensors
    assert _rows(md)[0].startswith(f"| 1 | {backbone_display('tiny_conv', 'none')} | FT |")
    assert "`tiny_conv[none]`" in md  # the registry name, in the row's full specification


# ------------------------------------------------------------------------------- a recipe
class HeadsOnly(Recipe):
    """Train the detection heads only: the body and the FPN stay at their start weights."""

    PARAMS = {"lr": None}

    def configure(self, model: Detector, start_state: dict, importance: dict | None) -> None:
        for name, p in model.named_parameters():
            if ".fpn." in name or name.startswith("model.backbone.body."):
                p.requires_grad_(False)


def test_a_new_recipe(bench_env: Path, tmp_path: Path) -> None:
    with RECIPES.registered("heads_only", HeadsOnly):
        record, md = _run_to_leaderboard(tmp_path, recipe="heads_only")
        final = torch.load(
            Path(bench_env.parent / "artifacts" / record["artifacts"]["checkpoint"]),
            weights_only=False,
        )["model"]
        # the FPN's initial weights are a function of the run seed: rebuild them and compare
        from benchmark.spec import derive_seed, spec_from_json
        from benchmark.training.checkpoint import load_detector

        spec = spec_from_json(record["spec"])
        torch.manual_seed(
            derive_seed(derive_seed(spec.seed, spec.seed_fingerprint, "train"), "init"))
        start = load_detector(spec, 4, None).state_dict()
    fpn = {k: v for k, v in final.items() if ".fpn." in k}
    assert fpn and all(torch.equal(v, start[k]) for k, v in fpn.items())
    assert not torch.equal(final["model.roi_heads.box_head.fc6.weight"],
                           start["model.roi_heads.box_head.fc6.weight"])
    assert _rows(md)[0].split(" | ")[2] == recipe_display("heads_only")
    assert "`heads_only`" in md


# ------------------------------------------------------------------------------- a dataset
def prepare_toy_subset(args) -> list[PreparedSplit]:
    """Toy: the first two images of demo_test, re-annotated under a dataset name of its own."""
    source = load_split("demo_test", args.data_root)
    coco = json.loads(source.annotation_path.read_text())
    keep = {im["id"] for im in coco["images"][:2]}
    coco["images"] = [im for im in coco["images"] if im["id"] in keep]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
    return [write_split("toy_test", coco, dataset="toy", domain="photo",
                        image_root=source.image_root, root=args.data_root)]


def test_a_new_dataset(bench_env: Path, tmp_path: Path, tiny_data_root: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"  # the shared tiny data plus the new split
    data.mkdir()
    for split in tiny_data_root.iterdir():
        (data / split.name).symlink_to(split)
    monkeypatch.setenv("BENCH_DATA", str(data))
    from benchmark.prepare import main as prepare_main

    with PREPARERS.registered("toy", prepare_toy_subset):
        assert prepare_main(["toy", "--quiet"]) == 0
    assert len(load_split("toy_test").coco["images"]) == 2
    record, md = _run_to_leaderboard(tmp_path, id_split="toy_test")
    assert set(record["metrics"]) == {"toy_test", "demo_sketch"}
    assert record["spec"]["data"]["toy_test"] == load_split("toy_test").fingerprint
    assert _rows(md)  # the cell's row on the leaderboard


# ------------------------------------------------------------------------------- an engine
class TorchvisionRetinaNet(Detector):
    """torchvision RetinaNet over the suite's body + FPN (single-stage, no background class)."""

    def __init__(self, body: Body, num_classes: int, sizes: tuple[int, ...], test: int) -> None:
        super().__init__()
        anchors = AnchorGenerator(tuple((s, s * 1.26) for s in (16, 32, 64, 128)),
                                  ((0.5, 1.0, 2.0),) * 4)
        self.model = RetinaNet(BodyWithFPN(body, 64), num_classes, min_size=sizes,
                               max_size=max(sizes), anchor_generator=anchors)
        self.sizes, self.test = sizes, test

    @property
    def body(self) -> Body:  # type: ignore[override]
        return self.model.backbone.body

    def train_module(self) -> nn.Module:
        return self.model  # RetinaNet's labels are 0-based already

    def prepare_train(self) -> None:
        self.model.train()
        self.model.transform.min_size = self.sizes

    @torch.no_grad()
    def predict(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.model.eval()
        self.model.transform.min_size = (self.test,)
        return self.model(images)

    def set_detach_body(self, detach: bool) -> None:
        self.model.backbone.detach_body = detach

    def body_state_prefix(self) -> str:
        return "model.backbone.body."


def build_retinanet(spec, num_classes: int) -> Detector:
    body = build_body(spec.backbone.name, spec.backbone.weights, spec.backbone.freeze_at)
    return TorchvisionRetinaNet(body, num_classes, spec.schedule.train_sizes,
                                spec.schedule.test_size)


def test_a_new_engine(bench_env: Path, tmp_path: Path) -> None:
    with ENGINES.registered("retinanet_small", build_retinanet):
        record, md = _run_to_leaderboard(tmp_path, engine="retinanet_small", recipe="dp")
    assert record["spec"]["engine"] == "retinanet_small"
    assert record["summary"]["id_ap"] >= 0.0 and "demo_sketch" in record["metrics"]
    assert _rows(md)[0].startswith("| 1 | EfficientNet-Lite0 (IN-1k) | DP |")
    assert "retinanet_small" in md  # the engine, in the row's full specification
