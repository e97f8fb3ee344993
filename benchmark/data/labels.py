"""A split's category ids ↔ the detector contract's 0-based class indices."""

from __future__ import annotations

import torch

from benchmark.data.split import PreparedSplit


class LabelMap:
    """Category ids of a split, sorted, ↔ contiguous class indices 0..K−1."""

    def __init__(self, split: PreparedSplit) -> None:
        self.cat_ids = sorted(c["id"] for c in split.coco["categories"])
        self._to_index = {c: i for i, c in enumerate(self.cat_ids)}

    def to_labels(self, cat_ids: torch.Tensor) -> torch.Tensor:
        return torch.tensor([self._to_index[int(c)] for c in cat_ids], dtype=torch.int64)

    def to_cat_ids(self, labels: torch.Tensor) -> list[int]:
        return [self.cat_ids[int(lb)] for lb in labels]

    def __len__(self) -> int:
        return len(self.cat_ids)
