"""What iteration ``i`` of a training uses: its learning-rate factor and its images.

Both are pure functions of (schedule, run seed, i), so a resumed run takes exactly the steps
of one that never stopped.
"""

from __future__ import annotations

import math

import numpy as np

from benchmark.spec import Schedule, derive_seed


def lr_factor(schedule: Schedule, it: int) -> float:
    """Multiplier of the base lr at iteration ``it`` (0-based).

    ``step``: linear warm-up over ``warmup_iters`` from 0.001, then ×0.1 at each of ``steps``
    (detectron2's WarmupMultiStepLR). ``onecycle``: linear warm-up over
    max(warmup_iters, 20 % of the run), then cosine decay to 0.
    """
    if schedule.policy == "step":
        warm = 1.0
        if it < schedule.warmup_iters:
            alpha = it / schedule.warmup_iters
            warm = 0.001 * (1 - alpha) + alpha
        return warm * 0.1 ** sum(it >= s for s in schedule.steps)
    warmup = max(schedule.warmup_iters, int(0.2 * schedule.iterations), 1)
    if it < warmup:
        return (it + 1) / warmup
    progress = (it - warmup) / max(1, schedule.iterations - warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def batch_indices(n: int, batch_size: int, seed: int, it: int) -> list[int]:
    """Indices of iteration ``it``: consecutive slices of per-epoch seeded permutations."""
    out: list[int] = []
    pos = it * batch_size
    while len(out) < batch_size:
        epoch, offset = divmod(pos, n)
        perm = np.random.default_rng(derive_seed(seed, "order", epoch)).permutation(n)
        take = min(batch_size - len(out), n - offset)
        out.extend(int(i) for i in perm[offset : offset + take])
        pos += take
    return out
