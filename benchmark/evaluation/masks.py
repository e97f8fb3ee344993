"""Instance masks of predictions as COCO RLE: what ``segmentation`` holds in a results file.

As detectron2 writes them (facebookresearch/detectron2@02b5c4e2
detectron2/evaluation/coco_evaluation.py lines 415–424: ``mask_util.encode`` of the
Fortran-ordered uint8 mask, counts decoded to a string), with soft masks binarised at ≥ 0.5
(detectron2/layers/mask_ops.py line 138, ``paste_masks_in_image``'s threshold 0.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_util

#: detectron2/layers/mask_ops.py line 75 (threshold 0.5), applied as ``>=`` (line 138)
MASK_THRESHOLD = 0.5


def encode_masks(masks: torch.Tensor) -> list[dict[str, Any]]:
    """One COCO RLE (``size`` [H, W], string ``counts``) per mask of (N, H, W)."""
    binary = (masks >= MASK_THRESHOLD).to(torch.uint8).cpu().numpy()
    if binary.shape[0] == 0:
        return []
    rles = mask_util.encode(np.asfortranarray(binary.transpose(1, 2, 0)))
    return [{"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")}
            for r in rles]
