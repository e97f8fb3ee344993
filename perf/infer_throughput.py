"""Inference throughput at the reference setup (see ``_throughput.py``): each engine's
eval-mode prediction of a batch (no gradients), under ``torch.autocast`` for AMP.

    python perf/infer_throughput.py [--small] [--precisions fp32,fp16,bf16]
                                          [--channels-last off,on]
"""

from __future__ import annotations

from _throughput import Engine, Setup, autocast, batch, median_seconds, run


def measure(engine: Engine, precision: str, setup: Setup) -> float:
    images, _ = batch(setup)

    def step() -> None:
        with autocast(precision):
            engine.predict(images)

    return median_seconds(step, setup)


if __name__ == "__main__":
    run("infer", measure, __doc__.splitlines()[0])
