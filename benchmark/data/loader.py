"""A prepared split as a torch detection dataset (torchvision's detection target format).

No augmentation happens here: the training loop flips with its own seeded generator.
:func:`study_crop` is a training augmentation as a pure function of a ``torch.Generator``
(for the loop to apply, as it applies flips).

Two detectron2 data-loader defaults the suite does not follow (deliberately; both listed in
docs/PROTOCOL_DIFFERENCES.md), at facebookresearch/detectron2@02b5c4e2
detectron2/config/defaults.py:

- ``DATALOADER.FILTER_EMPTY_ANNOTATIONS = True`` (line 128; applied in data/build.py:277-278)
  drops images without a non-crowd box. Here every image of the split is an index of
  :class:`DetectionDataset`, trained on as a background-only example when it has none.
- ``DATALOADER.ASPECT_RATIO_GROUPING = True`` (line 119; data/common.py:302-339) batches
  landscape with landscape and portrait with portrait images. Here a batch is a slice of a
  seeded per-epoch permutation of these indices (``training/schedule.py`` ``batch_indices``),
  a function of (seed, iteration) only, whatever the images' shapes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_util
from torch.utils.data import Dataset

from benchmark.data import read_rgb
from benchmark.data.corrupt import check_corruption, corrupt_image, corruption_seed
from benchmark.data.split import PreparedSplit
from benchmark.errors import DataError

Target = dict[str, Any]


class DetectionDataset(Dataset):
    """``dataset[i]`` → ``(image FloatTensor[3, H, W] in [0, 1], target)`` where target is
    ``{"boxes": FloatTensor[N, 4] xyxy pixels, "labels": int64[N] category ids, "image_id": int}``.

    Training data as detectron2 makes it: ``difficult`` VOC boxes are trained on
    (``load_voc_instances`` keeps them, "We include difficult samples in training":
    detectron2/data/datasets/pascal_voc.py, lines 57–61; only the evaluation ignores them),
    ``iscrowd`` COCO boxes are left out (``DatasetMapper`` drops them,
    detectron2/data/dataset_mapper.py, line 129); images without boxes are kept. With
    ``corruption=(name, severity)`` images are corrupted on the fly, to exactly the pixels of
    the materialised
    ``<split>-C.<name>.<severity>`` built with the same ``global_seed``.

    With ``masks=True`` (an engine with ``needs_masks``) the target also has ``"masks"``:
    uint8[N, H, W], one instance mask per box in the same order, decoded from the
    annotations' COCO ``segmentation`` (polygons or RLE, as pycocotools reads them). Every
    trained box must then have one; without ``masks`` nothing is decoded.
    """

    def __init__(
        self,
        split: PreparedSplit,
        *,
        corruption: tuple[str, int] | tuple[str, int, str] | None = None,
        global_seed: int = 0,
        masks: bool = False,
    ) -> None:
        if corruption is not None:
            check_corruption(*corruption[:2])
        self.split = split
        self.corruption = corruption
        self.global_seed = global_seed
        self.masks = masks
        coco = split.coco
        self.images: list[dict[str, Any]] = list(coco["images"])
        self._info = {img["id"]: img for img in self.images}
        self._boxes: dict[int, list[tuple[list[float], int]]] = defaultdict(list)
        self._segms: dict[int, list[Any]] = defaultdict(list)  # references, not copies
        for ann in coco["annotations"]:
            if ann.get("iscrowd", 0):
                continue
            x, y, w, h = ann["bbox"]
            self._boxes[ann["image_id"]].append(([x, y, x + w, y + h], ann["category_id"]))
            self._segms[ann["image_id"]].append(ann.get("segmentation"))

    def __len__(self) -> int:
        return len(self.images)

    def load_array(self, index: int) -> np.ndarray:
        """The (H, W, 3) uint8 RGB pixels of image ``index``, corrupted if requested."""
        info = self.images[index]
        image = read_rgb(self.split.image_path(info["file_name"]))
        if self.corruption is not None:
            name, severity, *order = self.corruption
            seed = corruption_seed(self.global_seed, info["id"], name, severity)
            image = corrupt_image(image, name, severity, seed=seed,
                                  channel_order=order[0] if order else "rgb")
        return image

    def target(self, index: int) -> Target:
        image_id = self.images[index]["id"]
        entries = self._boxes.get(image_id, [])
        boxes = torch.tensor([b for b, _ in entries], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([c for _, c in entries], dtype=torch.int64)
        target = {"boxes": boxes, "labels": labels, "image_id": int(image_id)}
        if self.masks:
            target["masks"] = self.instance_masks(int(image_id))
        return target

    def instance_masks(self, image_id: int) -> torch.Tensor:
        """uint8[N, H, W]: the masks of the image's trained boxes, in their order."""
        info = self._info[image_id]
        segms = self._segms.get(image_id, [])
        if any(s is None for s in segms):
            raise DataError(f"{self.split.name}: image {info['file_name']} has a box without "
                            "a segmentation; an instance-mask engine needs one per box")
        return decode_masks(segms, info["height"], info["width"])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        array = self.load_array(index)
        image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div_(255)
        return image, self.target(index)


def decode_masks(segmentations: list[Any], height: int, width: int) -> torch.Tensor:
    """uint8[N, H, W] of COCO segmentations: polygon lists (merged per instance), RLE with
    string or list counts — pycocotools' ``annToRLE`` rules."""
    out = np.zeros((len(segmentations), height, width), dtype=np.uint8)
    for i, segm in enumerate(segmentations):
        if isinstance(segm, list):  # polygons of one instance
            rle = mask_util.merge(mask_util.frPyObjects(segm, height, width))
        elif isinstance(segm.get("counts"), list):  # uncompressed RLE
            rle = mask_util.frPyObjects(segm, height, width)
        else:
            rle = {"size": segm["size"], "counts": segm["counts"].encode("ascii")
                   if isinstance(segm["counts"], str) else segm["counts"]}
        out[i] = mask_util.decode(rle)
    return torch.from_numpy(out)


def collate(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """Detection batches keep per-image sizes: a list of images and a list of targets."""
    return [image for image, _ in batch], [target for _, target in batch]


# ---- the transfer study's crop policy (Swin-T) -------------------------------------------------
#: short sides of the first resize of the crop policy (long side at most STUDY_CROP_MAX)
STUDY_CROP_SIZES = (400, 500, 600)
#: crop height / width range in pixels (``crop_type='absolute_range', crop_size=(384, 600)``)
STUDY_CROP_RANGE = (384, 600)
STUDY_CROP_MAX = 1333


def _randint(gen: torch.Generator, low: int, high: int) -> int:
    """Uniform on {low, …, high - 1} (numpy's ``randint``)."""
    return int(torch.randint(low, high, (1,), generator=gen))


def study_crop(image: torch.Tensor, target: Target, gen: torch.Generator
               ) -> tuple[torch.Tensor, Target]:
    """The second of the two policies of the transfer study's Swin-T pipeline, taken with
    probability ½ (``AutoAugment`` draws a policy uniformly); the other policy is the plain
    multi-scale resize, which the detector's own resize (``train_sizes``) does — as it does
    this policy's final resize (``override=True``). runopti/RobustDownstreamTransfer@a67aae8
    ``mmdetection/configs/swin/mask_rcnn_swin-t-p4-w7_fpn_ms-crop-2x_coco.py:38-69``:

    1. resize keeping the ratio to a short side drawn from 400 / 500 / 600, long side at
       most 1333 (mmcv ``imrescale``: size ``int(side × factor + 0.5)``, open-mmlab/
       mmcv@f4167fe1 ``mmcv/image/geometric.py:16-29, 196-225``; boxes scaled by the
       per-axis size ratio and clipped; masks nearest);
    2. crop ``h' ~ U{min(h, 384) … min(h, 600)}`` × ``w'`` alike at an offset uniform in
       ``0 … h − h'`` (mmdetection ``RandomCrop._get_crop_size`` / ``_crop_data``,
       open-mmlab/mmdetection@007684c1 ``mmdet/datasets/pipelines/transforms.py``): boxes
       shifted and clipped to the crop, those left without area dropped with their labels
       and masks (``allow_negative_crop=True``: a crop without boxes is kept).

    ``image`` (3, H, W) in [0, 1]; ``target`` with ``boxes`` (N, 4) xyxy, ``labels`` and
    optionally ``masks`` (N, H, W)."""
    if float(torch.rand((), generator=gen)) < 0.5:
        return image, target
    h, w = image.shape[-2:]
    short = STUDY_CROP_SIZES[_randint(gen, 0, len(STUDY_CROP_SIZES))]
    factor = min(short / min(h, w), STUDY_CROP_MAX / max(h, w))
    nh, nw = int(h * factor + 0.5), int(w * factor + 0.5)
    image = F.interpolate(image[None], size=(nh, nw), mode="bilinear",
                          align_corners=False)[0]
    boxes = target["boxes"] * torch.tensor([nw / w, nh / h, nw / w, nh / h])
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, nw)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, nh)
    masks = target.get("masks")
    if masks is not None and len(masks):
        masks = F.interpolate(masks[None].float(), size=(nh, nw), mode="nearest")[0].to(
            masks.dtype)
    elif masks is not None:
        masks = masks.new_zeros((0, nh, nw))
    low, high = STUDY_CROP_RANGE
    ch = _randint(gen, min(nh, low), min(nh, high) + 1)
    cw = _randint(gen, min(nw, low), min(nw, high) + 1)
    y0 = _randint(gen, 0, max(nh - ch, 0) + 1)
    x0 = _randint(gen, 0, max(nw - cw, 0) + 1)
    image = image[:, y0:y0 + ch, x0:x0 + cw]
    boxes = boxes - torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, cw)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, ch)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    out = {**target, "boxes": boxes[keep], "labels": target["labels"][keep]}
    if masks is not None:
        out["masks"] = masks[keep][:, y0:y0 + ch, x0:x0 + cw]
    return image, out
