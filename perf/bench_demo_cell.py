"""Benchmark: a demo cell's training step and evaluation, pinned vs native, in one run.

    python perf/bench_demo_cell.py [--steps 8] [--images 40]

Each variant runs in a fresh process (the pins are read when torch starts), on the demo
grid's first EfficientNet-Lite0 and ResNet-18 cells (data: ``python -m benchmark.prepare
demo`` first, or ``$BENCH_DATA``):

* ``native``: no pin — oneDNN and the machine's best ATen level (what the demo ran before
  ``reproducible_cpu``);
* ``pinned``: what a ``reproducible_cpu`` cell runs (benchmark.cpu_pinning).

It prints seconds per training step (median of ``--steps``, batch 4 at 160 px) and per
evaluated image (``--images`` test images, batch 10), and ``native``'s speed-up over
``pinned`` measured in the same run. Say which CPU (``lscpu``) it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

_CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {repo!r})
from benchmark.cpu_pinning import apply_in_process, pinned
import torch
if pinned():
    apply_in_process()
torch.set_num_threads(1)
from benchmark.data.split import load_split
from benchmark.grid import load_grid
from benchmark.store import TrainingDir
from benchmark.training import Trainer
spec = next(s for s in load_grid("demo", check_weights=False).runs
            if s.backbone.name == {backbone!r} and s.recipe.name == "ft")
trainer = Trainer(spec, load_split(spec.train_split), TrainingDir("bench"))
model = trainer.build(None)
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0, momentum=0.9)
times = []
for it in range({steps} + 1):
    images, targets = trainer.batch(it)
    t0 = time.perf_counter()
    total = sum(model.losses(images, targets).values())
    opt.zero_grad(); total.backward(); opt.step()
    times.append(time.perf_counter() - t0)
test = load_split(spec.id_split)
from benchmark.data.loader import DetectionDataset
data = DetectionDataset(test)
images = [data[i][0] for i in range({images})]
t0 = time.perf_counter()
for i in range(0, len(images), 10):
    model.predict(images[i:i + 10])
per_image = (time.perf_counter() - t0) / len(images)
print(json.dumps({{"step": statistics.median(times[1:]), "image": per_image}}))
"""
VARIANTS = ("pinned", "native")
REFERENCE = "pinned"


def run(variant: str, backbone: str, steps: int, images: int) -> dict[str, float]:
    from benchmark.cpu_pinning import PINNED_ENV

    env = {k: v for k, v in os.environ.items() if k not in PINNED_ENV}
    if variant == "pinned":
        env.update(PINNED_ENV)
    code = _CHILD.format(repo=str(REPO), backbone=backbone, steps=steps, images=images)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--images", type=int, default=40)
    args = ap.parse_args()
    for backbone in ("efficientnet_lite0", "resnet18"):
        rows = {v: run(v, backbone, args.steps, args.images) for v in VARIANTS}
        ref = rows[REFERENCE]
        print(f"{backbone} × ft")
        for v, r in rows.items():
            print(f"  {v:24s} step {r['step']:.3f} s ({ref['step'] / r['step']:.2f}x)   "
                  f"eval {1000 * r['image']:.1f} ms/image ({ref['image'] / r['image']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
