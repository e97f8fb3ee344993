"""A split's category ids ↔ the detector contract's 0-based class indices."""

from __future__ import annotations

import torch

from benchmark.data.split import PreparedSplit
from benchmark.errors import DataError


class LabelMap:
    """Category ids of a split, sorted, ↔ contiguous class indices 0..K−1."""

    def __init__(self, split: PreparedSplit) -> None:
        self.cat_ids = sorted(c["id"] for c in split.coco["categories"])
        unknown = {a["category_id"] for a in split.coco["annotations"]} - set(self.cat_ids)
        if unknown:
            raise DataError(f"{split.name}: annotations with category ids {sorted(unknown)} "
                            f"not among the split's categories {self.cat_ids}")
        # a lookup table: mapping a target's ids is one indexing op, no host read per box
        self._index = torch.full((max(self.cat_ids, default=0) + 1,), -1, dtype=torch.int64)
        self._index[torch.tensor(self.cat_ids, dtype=torch.int64)] = torch.arange(
            len(self.cat_ids), dtype=torch.int64)

    def to_labels(self, cat_ids: torch.Tensor) -> torch.Tensor:
        """0-based class indices of category ids of this split's annotations (checked in
        ``__init__``)."""
        return self._index[cat_ids.to(torch.int64)]

    def to_cat_ids(self, labels: torch.Tensor) -> list[int]:
        return [self.cat_ids[int(lb)] for lb in labels]

    def __len__(self) -> int:
        return len(self.cat_ids)
