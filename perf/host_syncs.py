"""Benchmark: host reads (device syncs on a GPU) per training step, suite vs stock torchvision.

    python perf/host_syncs.py [--steps 3]

Every ``.item()``, ``int(t)``, ``bool(t)`` is an ``aten::_local_scalar_dense`` call, which on a
GPU waits for the device. This counts them with the torch profiler, in the same run, for one
training step of the demo model (torchvision Faster R-CNN, EfficientNet-Lite0, a batch of 2
demo images) taken three ways:

* ``torchvision``: the model's own forward + ``sum(losses).backward()`` + SGD step (what the
  detector itself costs);
* ``suite``: the step of :mod:`benchmark.training.loop` (the engine's ``losses``, the
  on-device divergence check, backward, step): it should add nothing;
* ``suite, logging step``: the same on a step that logs (one read every ``LOG_EVERY``);

and the wall time per step of each (median). Runs on the CPU (the counts are the same on a
GPU, where each one would stall the step).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _demo_step import demo_step  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile

    from benchmark.training.loop import _Divergence

    d = demo_step()
    trainer, model, opt, images, targets = d.trainer, d.model, d.optimizer, d.images, d.targets
    shifted = [{**t, "labels": t["labels"] + 1} for t in targets]  # torchvision: 0 = background
    diverged = _Divergence(trainer.device)

    def stock() -> None:
        model.prepare_train()
        losses = model.model(images, shifted)
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()

    def suite(log: bool = False) -> None:
        losses = model.losses(images, targets)
        total = sum(losses.values())
        diverged.observe(0, total)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if log:
            diverged.check(lambda it, v: "diverged")
            torch.stack([total.detach(), *(v.detach() for v in losses.values())]).tolist()

    rows = []
    for name, step in (("torchvision", stock), ("suite", suite),
                       ("suite, logging step", lambda: suite(log=True))):
        step()  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        reads = sum(e.count for e in prof.key_averages() if e.key == "aten::_local_scalar_dense")
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        rows.append((name, reads, statistics.median(times)))
    ref = rows[0][2]
    print(f"{'step':<22} {'host reads':>10} {'s/step':>8} {'vs torchvision':>15}")
    for name, reads, t in rows:
        print(f"{name:<22} {reads:>10} {t:>8.3f} {t / ref:>14.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
