"""The reference setup for ``train_throughput.py`` and ``infer_throughput.py``:
Faster R-CNN + FPN, ResNet-50, 20 object classes (21 with torchvision's background), stem
and first stage frozen with frozen BatchNorm (detectron2's FREEZE_AT=2) for the suite's
engines, batch 8 of 800x1216, 12 random boxes per image, SGD momentum 0.9 at lr 0, 5 warm-up
+ 20 timed iterations, median, synchronised — for the suite's ``frcnn_fpn`` engine, stock
torchvision ``fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)`` (BatchNorm, all
layers trainable, as shipped) and the suite's ``detectron2`` engine where detectron2 imports,
in the same run. ``--small``: batch 2 of 320x480, ResNet-18, 1 + 3 iterations, fp32 (CPU, CI).
``--json PATH`` also writes the table and the environment as JSON (:func:`write_json`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NUM_CLASSES = 20  # object classes (VOC); torchvision's model counts the background: 21


@dataclass(frozen=True)
class Setup:
    batch: int
    height: int
    width: int
    backbone: str
    warmup: int
    timed: int
    boxes: int = 12


REFERENCE = Setup(batch=8, height=800, width=1216, backbone="resnet50", warmup=5, timed=20)
SMALL = Setup(batch=2, height=320, width=480, backbone="resnet18", warmup=1, timed=3)
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def parse(description: str) -> tuple[Setup, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--small", action="store_true", help="batch 2 of 320x480, ResNet-18")
    ap.add_argument("--precisions", default="", help="comma list of fp32,fp16,bf16 "
                    "(default: all the device supports; --small: fp32 — a CPU without "
                    "native bf16 emulates it, minutes per step)")
    ap.add_argument("--channels-last", default="off,on", help="off, on or off,on")
    ap.add_argument("--iters", default="", help="WARMUP,TIMED instead of the setup's (CI)")
    ap.add_argument("--json", default="", metavar="PATH", help="also write the results here")
    args = ap.parse_args()
    setup = SMALL if args.small else REFERENCE
    if args.iters:
        warmup, timed = (int(v) for v in args.iters.split(","))
        setup = replace(setup, warmup=warmup, timed=timed)
    dev = device()
    default = "fp32" if args.small else "fp32,fp16,bf16"
    args.precisions = [p for p in (args.precisions or default).split(",")
                       if p != "bf16" or dev.type != "cuda" or torch.cuda.is_bf16_supported()]
    args.channels_last = [v == "on" for v in args.channels_last.split(",")]
    return setup, args


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def environment() -> dict[str, Any]:
    """What a figure was measured on: torch, the device, the CPU count."""
    import torchvision

    dev = device()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name() if dev.type == "cuda" else _cpu_name(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """``payload`` and :func:`environment` as one JSON file (the scripts' ``--json PATH``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({**payload, "environment": environment()}, indent=2) + "\n")
    tmp.replace(path)


def detectron2_status() -> str:
    """``"importable"`` or ``"not importable: <why>"``."""
    try:
        import detectron2  # noqa: F401
    except ImportError as e:
        return f"not importable: {e}"
    return "importable"


def batch(setup: Setup, seed: int = 0) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Random images at the model's size and ``boxes`` random boxes each (0-based labels)."""
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(setup.batch):
        images.append(torch.rand(3, setup.height, setup.width, generator=g))
        xy = torch.rand(setup.boxes, 2, generator=g) * torch.tensor([setup.width, setup.height])
        wh = 16 + torch.rand(setup.boxes, 2, generator=g) * 240
        boxes = torch.cat([xy, xy + wh], 1)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(max=setup.width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(max=setup.height)
        targets.append({"boxes": boxes,
                        "labels": torch.randint(0, NUM_CLASSES, (setup.boxes,), generator=g)})
    dev = device()
    return ([i.to(dev) for i in images],
            [{k: v.to(dev) for k, v in t.items()} for t in targets])


@dataclass
class Engine:
    """One model under test: ``losses(images, targets)`` and ``predict(images)`` with the
    suite's conventions (0-based labels)."""

    name: str
    module: torch.nn.Module
    losses: Callable[[list, list], dict[str, torch.Tensor]]
    predict: Callable[[list], Any]


def engines(setup: Setup) -> list[Engine]:
    from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    from benchmark.models import build_detector
    from benchmark.spec import BackboneSpec, RecipeSpec, RunSpec, Schedule

    sizes = {"min_size": setup.height, "max_size": max(setup.width, 1333 if setup is REFERENCE
                                                       else setup.width)}
    out = []
    names = ["frcnn_fpn"]
    if detectron2_status() == "importable":
        names.append("detectron2")
    for name in names:
        spec = RunSpec(
            family="demo", engine=name, recipe=RecipeSpec("ft"),
            backbone=BackboneSpec(setup.backbone, weights="none", freeze_at=2),
            train_split="bench", id_split="bench", ood_splits=(), corruption=None, seed=0,
            schedule=Schedule(iterations=1, batch_size=setup.batch, lr=1.0,
                              train_sizes=(setup.height,), test_size=setup.height,
                              max_size=sizes["max_size"]))
        det = build_detector(spec, num_classes=NUM_CLASSES).to(device())
        out.append(Engine(f"suite {name}", det, det.losses, det.predict))
    if setup.backbone == "resnet50":
        stock = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None,
                                        num_classes=NUM_CLASSES + 1, **sizes)
    else:  # the same construction at ResNet-18 (torchvision ships no such builder)
        backbone = resnet_fpn_backbone(backbone_name=setup.backbone, weights=None,
                                       trainable_layers=5, norm_layer=torch.nn.BatchNorm2d)
        stock = FasterRCNN(backbone, num_classes=NUM_CLASSES + 1, **sizes)
    stock = stock.to(device())

    def stock_losses(images: list, targets: list) -> dict[str, torch.Tensor]:
        stock.train()
        return stock(images, [{**t, "labels": t["labels"] + 1} for t in targets])

    @torch.no_grad()
    def stock_predict(images: list) -> Any:
        stock.eval()
        return stock(images)

    out.append(Engine("torchvision stock", stock, stock_losses,
                      stock_predict))
    return out


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_seconds(step: Callable[[], None], setup: Setup) -> float:
    for _ in range(setup.warmup):
        step()
    sync()
    times = []
    for _ in range(setup.timed):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def autocast(precision: str) -> contextlib.AbstractContextManager:
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device().type, dtype=dtype)


def run(kind: str, measure: Callable[[Engine, str, Setup], float], description: str) -> None:
    """Measure every engine in every (precision, channels_last) and print one table with
    each engine's ratio to stock torchvision in the same setting."""
    setup, args = parse(description)
    dev = device()
    torch.manual_seed(0)
    models = engines(setup)
    print(f"{kind}: batch {setup.batch} of {setup.height}x{setup.width}, {setup.backbone}, "
          f"{setup.warmup} warm-up + {setup.timed} timed, median; device {dev}"
          + ("" if dev.type == "cuda" else f", {torch.get_num_threads()} threads"))
    print("| engine | precision | channels_last | img/s | peak mem GB | ratio to torchvision |")
    print("|---|---|---|---|---|---|")
    rows: list[dict[str, Any]] = []
    for precision in args.precisions:
        for channels_last in args.channels_last:
            rates = {}
            for e in models:
                e.module.to(memory_format=torch.channels_last if channels_last
                            else torch.contiguous_format)
                if dev.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                rate = setup.batch / measure(e, precision, setup)
                mem = torch.cuda.max_memory_allocated() / 1e9 if dev.type == "cuda" else None
                rates[e.name] = (rate, mem)
            ref = rates[models[-1].name][0]
            for name, (rate, mem) in rates.items():
                print(f"| {name} | {precision} | {'on' if channels_last else 'off'} | "
                      f"{rate:.3g} | {'-' if mem is None else f'{mem:.1f}'} | "
                      f"{rate / ref:.2f}x |")
                rows.append({"engine": name, "precision": precision,
                             "channels_last": channels_last, "img_s": rate,
                             "peak_mem_gb": mem, "ratio_to_torchvision": rate / ref})
            if args.json:  # after every setting: a step killed later keeps these rows
                write_json(args.json, {"kind": kind, "setup": asdict(setup),
                                       "reference_setup": not args.small,
                                       "detectron2": detectron2_status(),
                                       "engines": [e.name for e in models], "rows": rows})
