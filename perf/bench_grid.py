"""Expanding, validating and planning a 10,000-cell grid (target < 5 s on 2 cores).

    python perf/bench_grid.py [--seeds 250]

The grid crosses the demo's splits (prepared under $BENCH_DATA / datasets/data: run
`python -m benchmark.prepare demo` first) with 8 backbones × 5 recipes × N seeds, so every
cell is fully validated (specs, recipe parameters, every split's manifest and annotations,
class lists) and fingerprinted, then planned (parents first, state of every cell from the
result store). Reference measured in the same run: parsing the same YAML and building the
10,000 plain cell dicts, i.e. the floor any implementation pays.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import yaml

from benchmark.grid import load_grid
from benchmark.run import plan

BACKBONES = [
    "efficientnet_lite0",
    "resnet18",
    "resnet50",
    "resnet101",
    "convnext_tiny",
    "convnext_base",
    "efficientnet_b0",
    "efficientnet_b2",
]
RECIPES = [
    {"name": "ft"},
    {"name": "dp", "lr": 0.02},
    {"name": "dp_ft", "dp_lr": 0.02},
    {"name": "reg_ft", "dp_lr": 0.02, "weighting": "rgn"},
    {"name": "wise_ft", "dp_lr": 0.02},
]


def grid_doc(seeds: int) -> dict:
    return {
        "name": "bench10k",
        "experiments": [
            {
                "benchmark": "demo",
                "engine": "frcnn_fpn_small",
                "train_split": "demo_train",
                "id_split": "demo_test",
                "ood_splits": ["demo_stylized", "demo_sketch", "demo_inked"],
                "corruption": {"base": "demo_test", "names": "benchmark", "severities": [3]},
                "schedule": {"iterations": 300, "batch_size": 4, "lr": 0.01},
                "backbones": [{"name": b, "weights": "none"} for b in BACKBONES],
                "recipes": RECIPES,
                "seeds": list(range(seeds)),
            }
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=250)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench10k.yaml"
        path.write_text(yaml.safe_dump(grid_doc(args.seeds)))

        t0 = time.perf_counter()
        doc = yaml.safe_load(path.read_text())
        exp = doc["experiments"][0]
        floor = [
            {"backbone": b, "recipe": r, "seed": s}
            for b, r, s in itertools.product(exp["backbones"], exp["recipes"], exp["seeds"])
        ]
        t_ref = time.perf_counter() - t0

        t0 = time.perf_counter()
        grid = load_grid(str(path))
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        cells = plan(grid)
        t_plan = time.perf_counter() - t0
    total = t_load + t_plan
    print(
        f"grid runs: {len(grid.runs)} (reference dicts: {len(floor)}); cells planned: {len(cells)}"
    )
    print(f"expand + validate + fingerprint: {t_load:.2f} s; plan (states): {t_plan:.2f} s")
    print(
        f"total {total:.2f} s (target < 5 s); reference (YAML + plain dicts) {t_ref:.3f} s; "
        f"ratio {total / t_ref:.0f}x"
    )


if __name__ == "__main__":
    main()
