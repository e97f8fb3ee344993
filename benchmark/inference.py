"""Inference: a detector's predictions over eval splits as COCO results — the data loader
that decodes (and corrupts) images ahead in worker processes, the sweep's image set across
splits, and the conversion of detector outputs to COCO results in the split's own ids.

Models and data only: no training, no scoring, no files written (the pipeline writes the
predictions and scores them, :mod:`benchmark.pipeline`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from benchmark.data.labels import LabelMap
from benchmark.data.loader import DetectionDataset
from benchmark.data.split import ResolvedSplit
from benchmark.evaluation.masks import encode_masks
from benchmark.models import Detector
from benchmark.runtime import device, loader_workers


def coco_detections(
    targets: list[dict[str, Any]], outputs: list[dict[str, torch.Tensor]], labels: LabelMap
) -> list[dict[str, Any]]:
    """A batch's detections as COCO results in the split's own ids, read from the device
    once: boxes, label and score of every detection as float64 (exact for float32 values and
    class indices). One dict per detection; an engine with more outputs adds its keys here."""
    packed = torch.cat([
        torch.cat([o["boxes"].double(), o["labels"].double()[:, None],
                   o["scores"].double()[:, None]], dim=1)
        for o in outputs
    ]).tolist()
    rows = iter(packed)
    results: list[dict[str, Any]] = []
    for target, out in zip(targets, outputs, strict=True):
        image_id = int(target["image_id"])
        segms = iter(encode_masks(out["masks"])) if "masks" in out else None  # Mask R-CNN
        for _ in range(out["scores"].shape[0]):
            x0, y0, x1, y1, label, score = next(rows)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": labels.cat_ids[int(label)],
                    "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                    "score": round(score, 5),
                }
            )
            if segms is not None:
                results[-1]["segmentation"] = next(segms)
    return results


def predict_split(
    model: Detector, split: ResolvedSplit, labels: LabelMap, batch_size: int, progress: bool = True
) -> list[dict[str, Any]]:
    """Run the detector over one split in this process, batch after batch (corrupted on the
    fly if so resolved); COCO results in the split's own ids. :func:`predict_splits` gives
    the same results for many splits with the images made ahead in worker processes."""
    from tqdm import tqdm

    dataset = DetectionDataset(split.split, corruption=split.corruption)
    dev = device()
    results: list[dict[str, Any]] = []
    for start in tqdm(
        range(0, len(dataset), batch_size),
        desc=f"eval {split.name}",
        disable=not progress,
        leave=False,
    ):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        outputs = model.predict([img.to(dev) for img, _ in items])
        results.extend(coco_detections([t for _, t in items], outputs, labels))
    return results


class _SweepImages(torch.utils.data.Dataset):
    """The images of several eval splits as one dataset, item ``(split index, image index)``,
    so that one loader decodes (and corrupts) ahead across split boundaries. Splits that
    read the same prepared split share its object, so the annotations travel to a worker
    once, not once per corruption; each worker builds its own datasets."""

    def __init__(self, splits: list[ResolvedSplit]) -> None:
        shared: dict[Path, Any] = {}
        self.splits = [ResolvedSplit(s.name, shared.setdefault(s.split.root, s.split),
                                     s.corruption) for s in splits]
        self._datasets: dict[int, DetectionDataset] = {}

    def sizes(self) -> list[int]:
        return [len(s.split.coco["images"]) for s in self.splits]

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, dict[str, Any]]:
        job, index = key
        if job not in self._datasets:
            split = self.splits[job]
            self._datasets[job] = DetectionDataset(split.split, corruption=split.corruption)
        return self._datasets[job][index]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_datasets": {}}


def predict_splits(
    model: Detector,
    splits: list[ResolvedSplit],
    labels: LabelMap,
    batch_size: int,
    *,
    workers: int | None = None,
    progress: bool = True,
) -> Iterator[tuple[ResolvedSplit, list[dict[str, Any]]]]:
    """(split, its COCO results) for each split in order, as soon as its last batch is
    predicted — one pass over the model, with ``workers`` processes (default
    ``$BENCH_LOADER_WORKERS``, :func:`benchmark.runtime.loader_workers`) decoding and
    corrupting the next batches while the model predicts. The batches, the pixels and so
    the results are those of :func:`predict_split` on each split."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from benchmark.data.loader import collate

    workers = loader_workers() if workers is None else workers
    sweep = _SweepImages(splits)
    sizes = sweep.sizes()
    batches = [[(job, i) for i in range(start, min(start + batch_size, n))]
               for job, n in enumerate(sizes) for start in range(0, n, batch_size)]
    left = [-(-n // batch_size) for n in sizes]  # batches still to predict, per split
    dev = device()
    loader = DataLoader(
        sweep,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=dev.type == "cuda",
        **({"multiprocessing_context": "forkserver", "prefetch_factor": 4} if workers else {}),
    )
    results: list[dict[str, Any]] = []
    done = 0
    bar = tqdm(total=sum(sizes), desc=f"eval {len(splits)} splits", disable=not progress,
               leave=False)
    for (images, targets), batch in zip(loader, batches, strict=True):
        while left[done] == 0:  # an empty split before this batch's
            yield sweep.splits[done], []
            done += 1
        outputs = model.predict([img.to(dev, non_blocking=True) for img in images])
        results.extend(coco_detections(targets, outputs, labels))
        bar.update(len(images))
        left[batch[0][0]] -= 1
        if left[done] == 0:
            yield sweep.splits[done], results
            results, done = [], done + 1
    bar.close()
    for job in range(done, len(splits)):  # empty splits at the end
        yield sweep.splits[job], []
