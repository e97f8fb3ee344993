"""Mask R-CNN for the Cityscapes family: instance masks from the gtFine polygons, a few CPU
training iterations of the mask engine, box and mask AP through the evaluation path, and
``mrcnn_fpn``'s parameter count against detectron2's mask head.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from pycocotools import mask as mask_util

from benchmark.data.labels import LabelMap
from benchmark.data.loader import DetectionDataset
from benchmark.data.sources import Options, prepare_cityscapes
from benchmark.data.split import ResolvedSplit
from benchmark.errors import DataError
from benchmark.evaluation import evaluate_split
from benchmark.evaluation.coco import MASK_KEYS, mask_summary
from benchmark.evaluation.masks import encode_masks
from benchmark.inference import predict_split
from benchmark.models import build_detector
from benchmark.models.engine import engine_needs_masks
from benchmark.spec import BackboneSpec, RecipeSpec, RunSpec, Schedule
from benchmark.store import TrainingDir
from benchmark.training import Trainer
from tests.test_sources_cityscapes import cityscapes  # noqa: F401  (the gtFine fixture)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _spec(engine: str, backbone: BackboneSpec, size: int = 128, iterations: int = 3) -> RunSpec:
    return RunSpec(
        family="cityscapes", engine=engine, backbone=backbone, recipe=RecipeSpec("ft"),
        train_split="cityscapes_val", id_split="cityscapes_val", ood_splits=(), corruption=None,
        schedule=Schedule(iterations=iterations, batch_size=2, lr=0.01, train_sizes=(size,),
                          test_size=size, max_size=2 * size, checkpoint_every=100,
                          rgn_batches=0),
        seed=0,
    )


@pytest.fixture
def val_split(cityscapes: Path, tmp_path: Path):  # noqa: F811
    opts = Options(root=tmp_path / "data", allow_partial=True, log=lambda s: None)
    (split,) = prepare_cityscapes(cityscapes, opts, splits=["val"])
    return split


def test_converter_writes_the_visible_pixels_as_masks(val_split) -> None:
    anns = [a for a in val_split.coco["annotations"] if a["image_id"] == 1]
    person = anns[0]  # x 10..20, y 5..25 drawn, the car (later) covers x >= 15
    assert person["bbox"] == [10, 5, 5, 21]
    m = mask_util.decode({"size": person["segmentation"]["size"],
                          "counts": person["segmentation"]["counts"].encode()})
    assert m.shape == (32, 64)
    assert int(m.sum()) == 5 * 21  # columns 10..14 × rows 5..25, by hand
    assert m[5:26, 10:15].all()
    # the crowd triangle keeps its segmentation too (COCO's segm evaluation needs it)
    assert all("segmentation" in a for a in val_split.coco["annotations"])


def test_loader_adds_masks_only_when_asked(val_split) -> None:
    plain = DetectionDataset(val_split)[0][1]
    assert "masks" not in plain
    target = DetectionDataset(val_split, masks=True)[0][1]
    masks = target["masks"]
    assert masks.dtype == torch.uint8 and masks.shape == (3, 32, 64)  # 3 non-crowd boxes
    # each mask's extent is its box (both are the visible pixels)
    for box, m in zip(target["boxes"], masks, strict=True):
        ys, xs = torch.where(m > 0)
        assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1,
                                ys.max().item() + 1]
    assert engine_needs_masks("mrcnn_fpn") and not engine_needs_masks("frcnn_fpn")


def test_perfect_masks_score_mask_ap_one(val_split) -> None:
    """Known answer: the ground truth's own masks, decoded by the loader and encoded as the
    pipeline encodes predictions, give mask AP 1.0 (and box AP 1.0)."""
    ds = DetectionDataset(val_split, masks=True)
    labels = LabelMap(val_split)
    preds = []
    for i in range(len(ds)):
        _, t = ds[i]
        for box, label, rle in zip(t["boxes"].tolist(), t["labels"].tolist(),
                                   encode_masks(t["masks"].float()), strict=True):
            x0, y0, x1, y1 = box
            preds.append({"image_id": t["image_id"], "category_id": label,
                          "bbox": [x0, y0, x1 - x0, y1 - y0], "score": 1.0,
                          "segmentation": rle})
    assert labels.cat_ids  # dataset labels are category ids already
    result = mask_summary(val_split.annotation_path, preds)
    assert set(result) == set(MASK_KEYS)
    assert result["mask_AP"] == pytest.approx(1.0)
    assert result["mask_AP50"] == pytest.approx(1.0)
    # a mask shifted off its object by half its width scores lower: masks, not boxes, count
    shifted = [{**p, "segmentation": encode_masks(torch.roll(torch.from_numpy(
        mask_util.decode({"size": p["segmentation"]["size"],
                          "counts": p["segmentation"]["counts"].encode()})).float(),
        shifts=int(p["bbox"][2]) // 2 + 1, dims=1)[None])[0]} for p in preds]
    assert mask_summary(val_split.annotation_path, shifted)["mask_AP"] < 0.5


def test_a_box_only_split_scores_a_mask_engine_on_boxes(val_split, tmp_path: Path) -> None:
    """Cityscapes-trained Mask R-CNN evaluated on BDD100K (boxes only): box AP, no mask AP —
    the published grid's OOD split stopped every cell at evaluation before. A split with masks
    on some annotations only is refused."""
    import json

    spec = _spec("mrcnn_fpn_small", BackboneSpec("resnet18", "none"), size=96, iterations=2)
    coco = json.loads(Path(val_split.annotation_path).read_text())
    ann = coco["annotations"][0]
    x, y, w, h = ann["bbox"]
    pred = {"image_id": ann["image_id"], "category_id": ann["category_id"], "bbox": [x, y, w, h],
            "score": 1.0, "segmentation": {"size": [4, 4], "counts": "0@"}}
    boxes_only = {**coco, "annotations": [{k: v for k, v in a.items() if k != "segmentation"}
                                          for a in coco["annotations"]]}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes_only))
    metrics = evaluate_split(spec, "bdd100k_val", tmp_path / "boxes.json", [pred])
    assert metrics["AP"] > 0 and "mask_AP" not in metrics
    mixed = {**coco, "annotations": [boxes_only["annotations"][0], *coco["annotations"][1:]]}
    (tmp_path / "mixed.json").write_text(json.dumps(mixed))
    with pytest.raises(DataError, match="has no segmentation"):
        evaluate_split(spec, "cityscapes_val", tmp_path / "mixed.json", [pred])


def test_mask_engine_trains_and_reports_box_and_mask_ap(val_split, tmp_path: Path) -> None:
    spec = _spec("mrcnn_fpn_small", BackboneSpec("resnet18", "none"), size=96, iterations=2)
    trainer = Trainer(spec, val_split, TrainingDir("t", tmp_path / "artifacts"))
    trainer.run(progress=False)
    model = trainer.model
    assert model is not None and model.needs_masks
    assert {"loss_mask", "loss_box_reg", "loss_objectness"} <= set(trainer.log[0])
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in trainer.log)
    model.model.roi_heads.score_thresh = 0.0  # an untrained model: keep every detection
    preds = predict_split(model, ResolvedSplit("cityscapes_val", val_split), trainer.labels, 2,
                          progress=False)
    assert preds and all("segmentation" in p for p in preds)
    # masks in image coordinates: the size of the image each detection belongs to
    sizes = {img["id"]: [img["height"], img["width"]] for img in val_split.coco["images"]}
    assert all(p["segmentation"]["size"] == sizes[p["image_id"]] for p in preds)
    metrics = evaluate_split(spec, "cityscapes_val", val_split.annotation_path, preds)
    for key in ("AP", "AP50", "mask_AP", "mask_AP50"):
        assert 0.0 <= metrics[key] <= 1.0


def test_mrcnn_fpn_parameter_count_equals_detectron2(tmp_path: Path) -> None:
    """detectron2's Mask R-CNN R50-FPN for Cityscapes' 8 classes
    (configs/Cityscapes/mask_rcnn_R_50_FPN.yaml: NUM_CLASSES 8):

    * Faster R-CNN R50-FPN with 20 classes: 41,392,436 (tests/test_engine_geometry.py);
      with 8 classes the box predictor shrinks from cls 1024·21+21 + box 1024·80+80 =
      103,525 to cls 1024·9+9 + box 1024·32+32 = 42,025: 41,392,436 − 61,500 = 41,330,936;
    * mask head (MaskRCNNConvUpsampleHead, NUM_CONV 4, CONV_DIM 256, 8 class-specific masks):
      4 × (256·256·9 + 256) = 2,360,320, deconv 256·256·4 + 256 = 262,400, predictor
      256·8 + 8 = 2,056: 2,624,776;
    * total 41,330,936 + 2,624,776 = 43,955,712.
    """
    path = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    model = build_detector(_spec("mrcnn_fpn", BackboneSpec("resnet50", str(path))), 8)
    assert sum(p.numel() for p in model.parameters()) == 43_955_712
    roi = model.model.roi_heads
    assert roi.mask_roi_pool.output_size == (14, 14)
    assert roi.mask_roi_pool.featmap_names == ["0", "1", "2", "3"]
    assert roi.mask_roi_pool.sampling_ratio == 0
    with torch.no_grad():
        logits = roi.mask_predictor(roi.mask_head(torch.zeros(1, 256, 14, 14)))
    assert logits.shape == (1, 9, 28, 28)  # 28×28, background map + 8 classes


def test_summary_carries_mask_ap_next_to_box_ap() -> None:
    """ID mask AP and the OOD mean of mask APs (hand-computed: (0.2 + 0.3) / 2); the box
    summary is untouched, and a cell without masks (Faster R-CNN) has None for both."""
    from benchmark.evaluation import summarize

    spec = RunSpec(
        family="cityscapes", engine="mrcnn_fpn", backbone=BackboneSpec("resnet18", "none"),
        recipe=RecipeSpec("ft"), train_split="cityscapes_train", id_split="cityscapes_val",
        ood_splits=("foggy_val", "bdd_val"), corruption=None,
        schedule=Schedule(iterations=1, batch_size=1, lr=0.01), seed=0)
    metrics = {"cityscapes_val": {"AP": 0.5, "AP50": 0.7, "mask_AP": 0.4},
               "foggy_val": {"AP": 0.3, "AP50": 0.5, "mask_AP": 0.2},
               "bdd_val": {"AP": 0.1, "AP50": 0.2, "mask_AP": 0.3}}
    summary = summarize(spec, metrics)
    assert summary["id_ap"] == 0.5 and summary["id_mask_ap"] == 0.4
    assert summary["ood_mask_mean"] == pytest.approx(0.25)
    boxes_only = {k: {m: v for m, v in d.items() if m != "mask_AP"} for k, d in metrics.items()}
    none = summarize(spec, boxes_only)
    assert none["id_mask_ap"] is None and none["ood_mask_mean"] is None
    assert none["ood_mean"] == summary["ood_mean"] == pytest.approx(0.2)
