"""A prepared split as a torch detection dataset (torchvision's detection target format).

No augmentation happens here: the training loop flips with its own seeded generator.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
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
