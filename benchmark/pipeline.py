"""Stages of one cell: train once, evaluate every split, write the record.

Every stage is idempotent (its output present → skipped) and atomic (temp file + rename),
so a killed cell leaves only a resumable checkpoint and rerunning continues it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from benchmark.data.loader import DetectionDataset
from benchmark.data.split import ResolvedSplit, load_split, resolve_split
from benchmark.errors import BenchmarkError
from benchmark.spec import RunSpec
from benchmark.store import artifacts_root, atomic_write_json, file_lock, results_root

RECORD = "record.json"
FAILED = "failed.json"
SPEC = "spec.json"


def results_dir(fingerprint: str) -> Path:
    return results_root() / "runs" / fingerprint


def artifacts_dir(train_fingerprint: str) -> Path:
    """Checkpoints, predictions and per-split metrics of one training."""
    return artifacts_root() / "train" / train_fingerprint


def read_record(fingerprint: str) -> dict[str, Any] | None:
    path = results_dir(fingerprint) / RECORD
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


#: How long a cell waits for another cell's training of the same run (e.g. a shared DP
#: parent) before giving up with an error; $BENCH_LOCK_TIMEOUT_S overrides.
LOCK_TIMEOUT_S = 7 * 24 * 3600.0


def training_lock(path: Path, timeout_s: float | None = None) -> contextlib.AbstractContextManager:
    """So concurrent cells never train the same run twice (bounded wait, then an error)."""
    if timeout_s is None:
        timeout_s = float(os.environ.get("BENCH_LOCK_TIMEOUT_S", LOCK_TIMEOUT_S))
    return file_lock(path, timeout_s, poll_s=1.0)


# ---------------------------------------------------------------------------------- train
def train_stage(spec: RunSpec, *, progress: bool = True) -> Path:
    """Train ``spec`` (its parent first), returning the final checkpoint path."""
    from benchmark.train import FINAL, Trainer, world

    out = artifacts_dir(spec.train_fingerprint)
    final = out / FINAL
    if final.is_file():
        return final
    init_from = train_stage(spec.parent, progress=progress) if spec.parent is not None else None
    if world()[0] != 0:  # a DDP worker: rank 0 holds the lock and writes the outputs
        return Trainer(spec, load_split(spec.train_split), out).run(init_from, progress=False)
    with training_lock(out / "train.lock"):
        if final.is_file():
            return final
        trainer = Trainer(spec, load_split(spec.train_split), out)
        return trainer.run(init_from=init_from, progress=progress)


# ---------------------------------------------------------------------------------- evaluate
def predict_split(
    model: Any, split: ResolvedSplit, label_map: Any, batch_size: int, progress: bool = True
) -> list[dict[str, Any]]:
    """Run the detector over a split (corrupted on the fly if so resolved); COCO results in
    the split's own ids."""
    from tqdm import tqdm

    from benchmark.train import device

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
        for (_, target), out in zip(items, outputs, strict=True):
            boxes = out["boxes"].cpu()
            cat_ids = label_map.to_cat_ids(out["labels"].cpu())
            for box, cat, score in zip(
                boxes.tolist(), cat_ids, out["scores"].cpu().tolist(), strict=True
            ):
                x0, y0, x1, y1 = box
                results.append(
                    {
                        "image_id": int(target["image_id"]),
                        "category_id": int(cat),
                        "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                        "score": round(float(score), 5),
                    }
                )
    return results


def voc_protocol(spec: RunSpec, split: str) -> str | None:
    """VOC-style AP is computed next to COCO's for the Pascal family: 11-point on VOC2007
    test (and its -C copies), area under the curve on the other VOC-layout splits."""
    if spec.benchmark != "pascal":
        return None
    return "voc07" if split.startswith("voc07_test") else "voc"


def headline(metrics: dict[str, Any], key: str) -> float:
    """The family's headline number: VOC-style where computed, else COCO."""
    return metrics["voc"][key] if "voc" in metrics else metrics[key]


def evaluate_stage(spec: RunSpec, checkpoint: Path, *, progress: bool = True) -> dict[str, dict]:
    """Evaluate every eval split not yet evaluated; return {split: 12 COCO numbers}."""
    from benchmark.evaluate import coco_summary
    from benchmark.store import atomic_write_text
    from benchmark.train import LabelMap, load_detector
    from benchmark.voc_eval import voc_summary

    out = artifacts_dir(spec.train_fingerprint)
    metrics: dict[str, dict] = {}
    todo: list[str] = []
    for name in spec.eval_splits:
        path = out / "metrics" / f"{name}.json"
        if path.is_file():
            metrics[name] = json.loads(path.read_text())
        else:
            todo.append(name)
    if not todo:
        return metrics
    label_map = LabelMap(load_split(spec.train_split))
    model = load_detector(spec, len(label_map), checkpoint)
    for name in todo:
        split = resolve_split(name)
        preds = predict_split(model, split, label_map, spec.schedule.eval_batch_size, progress)
        atomic_write_text(out / "predictions" / f"{name}.json", json.dumps(preds))
        gt = split.split.annotation_path  # a corruption keeps the base split's boxes
        metrics[name] = coco_summary(gt, preds)
        protocol = voc_protocol(spec, name)
        if protocol is not None:
            metrics[name]["voc"] = voc_summary(gt, preds, use_07_metric=protocol == "voc07")
            metrics[name]["voc"]["protocol"] = protocol
        atomic_write_json(out / "metrics" / f"{name}.json", metrics[name])
    return {name: metrics[name] for name in spec.eval_splits}


def summarize(spec: RunSpec, metrics: dict[str, dict]) -> dict[str, Any]:
    from benchmark.metrics import corruption_summary, ood_summary

    id_ap = headline(metrics[spec.id_split], "AP")
    ood = {s: headline(metrics[s], "AP") for s in spec.ood_splits}
    summary: dict[str, Any] = {
        "protocol": "voc" if spec.benchmark == "pascal" else "coco",
        "id_ap": id_ap,
        "id_ap50": headline(metrics[spec.id_split], "AP50"),
        "ood": ood or None,
        "ood_mean": None,
        "ood_mean_ap50": None,
        "gap": None,
        "P": None,
        "mPC": None,
        "rPC": None,
        "corruption": None,
    }
    if ood:
        o = ood_summary(id_ap, ood)
        summary.update(ood_mean=o["ood_mean"], gap=o["gap"])
        summary["ood_mean_ap50"] = sum(headline(metrics[s], "AP50") for s in ood) / len(ood)
    if spec.corruption is not None:
        aps = {(c, sev): headline(metrics[name], "AP") for name, c, sev in spec.corrupted_splits}
        clean = headline(metrics[spec.corruption.base], "AP")
        cs = corruption_summary(clean, aps, spec.corruption.names)
        summary.update(P=cs["P"], mPC=cs["mPC"], rPC=cs["rPC"])
        table: dict[str, dict[str, float]] = {}
        for (c, sev), ap in aps.items():
            table.setdefault(c, {})[str(sev)] = ap
        summary["corruption"] = table
    return summary


# ---------------------------------------------------------------------------------- cell
def run_cell(spec: RunSpec, *, grid: str = "", progress: bool = True) -> dict[str, Any]:
    """Train, evaluate and record one cell; idempotent and resumable."""
    from benchmark.provenance import provenance
    from benchmark.train import FINAL, world

    done = read_record(spec.fingerprint)
    if done is not None:
        return done
    if world()[0] != 0:  # DDP workers only help train; rank 0 evaluates and records
        train_stage(spec, progress=False)
        return {}
    rdir = results_dir(spec.fingerprint)
    atomic_write_json(rdir / SPEC, {"grid": grid, "spec": spec.to_json()})
    started = datetime.now(UTC)
    t0 = time.time()
    try:
        checkpoint = train_stage(spec, progress=progress)
        metrics = evaluate_stage(spec, checkpoint, progress=progress)
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        wall = time.time() - t0
        prov = provenance()
        prov.update(
            datasets=dict(spec.data),
            started=started.isoformat(timespec="seconds"),
            finished=datetime.now(UTC).isoformat(timespec="seconds"),
            wall_time_s=round(wall, 1),
            gpu_hours=round(wall / 3600, 4) if torch.cuda.is_available() else 0.0,
        )
        out = artifacts_dir(spec.train_fingerprint)
        record = {
            "schema": 1,
            "fingerprint": spec.fingerprint,
            "train_fingerprint": spec.train_fingerprint,
            "grid": grid,
            "spec": spec.to_json(),
            "metrics": metrics,
            "summary": summarize(spec, metrics),
            "rgn": state.get("rgn"),
            "provenance": prov,
            "artifacts": {
                "checkpoint": str((out / FINAL).relative_to(artifacts_root())),
                "predictions": {
                    s: str((out / "predictions" / f"{s}.json").relative_to(artifacts_root()))
                    for s in spec.eval_splits
                },
            },
        }
    except Exception as e:  # not SystemExit: a requeue by submitit exits on purpose
        tail = traceback.format_exc().splitlines()[-15:]
        atomic_write_json(
            rdir / FAILED,
            {
                "error": str(e) if isinstance(e, BenchmarkError) else f"{type(e).__name__}: {e}",
                "traceback_tail": tail,
                "failed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        raise
    atomic_write_json(rdir / RECORD, record)
    (rdir / FAILED).unlink(missing_ok=True)
    return record
