"""A one-kind Pascal grid on the demo's small engine, and the smoke command around it."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.run import main as run_main

GRID = """\
name: {name}
family: pascal
engine: {engine}
train_split: voc0712_trainval
id_split: voc07_test
ood_splits: [clipart_test, watercolor_test, comic_test]
corruption: {{base: voc07_test, names: [fog], severities: [3], channel_order: bgr}}
schedule: {{iterations: 80000, batch_size: 2, lr: 0.0025, policy: step, steps: [50000],
           train_sizes: [480, 800], test_size: 800, max_size: 1333, checkpoint_every: 2000}}
backbones: [{{name: efficientnet_lite0, weights: imagenet}}]
recipes: [{{name: ft}}]
seeds: [0, 1]
"""


def write_grid(tmp_path: Path, name: str = "pascal_small", engine: str = "frcnn_fpn_small"
               ) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(GRID.format(name=name, engine=engine))
    return path


def smoke(grid: Path, root: Path, *extra: str, inline: bool = True) -> int:
    """The smoke at 0.2 × the true sizes, 1 iteration, 1 image per split, in this process
    (a registered test engine or stand-in is seen) unless ``inline`` is False."""
    return run_main(["--grid", str(grid), "--smoke", "--smoke-iters", "1", "--smoke-images", "1",
                     "--smoke-scale", "0.2", "--smoke-root", str(root), "--quiet",
                     *(["--smoke-inline"] if inline else []), *extra])


@pytest.fixture
def smoke_root(tmp_path: Path) -> Path:
    return tmp_path / "smoke"
