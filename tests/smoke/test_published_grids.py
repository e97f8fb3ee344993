"""The smoke of every published grid (marked ``rehearsal``: ``pytest --runslow -m rehearsal``).

Hours on 2 cores (251 kinds, each evaluating every split of its family), so neither the
default run nor CI's slow stage runs them; CI's default run rehearses one kind end to end
(``test_smoke_run.py``). At kind granularity every grid is rehearsed with input sizes and
stand-in images shrunk to 0.16 × (800 px → 128 px), one iteration and one image per split;
one cell per family runs at its true size. The
detectron2 grid runs only where detectron2 is importable.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from benchmark.grid import GRIDS_DIR
from benchmark.run import main as run_main

PUBLISHED = sorted(p.stem for p in GRIDS_DIR.glob("*.yaml") if p.stem != "demo")
HAS_D2 = importlib.util.find_spec("detectron2") is not None


def _smoke(grid: str, root: Path, scale: str, *extra: str) -> int:
    return run_main(["--grid", grid, "--smoke", "--smoke-iters", "1", "--smoke-images", "1",
                     "--smoke-scale", scale, "--smoke-inline", "--smoke-root", str(root),
                     "--quiet", "--no-report", *extra])


@pytest.mark.slow
@pytest.mark.rehearsal
@pytest.mark.parametrize("grid", PUBLISHED)
def test_every_kind_of_every_published_grid(grid: str, bench_env: Path,
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    if grid.endswith("_d2") and not HAS_D2:
        pytest.skip("detectron2 is not importable")
    root = tmp_path_factory.getbasetemp() / "smoke_published"  # stand-in weights shared
    assert _smoke(grid, root, "0.1", "--smoke-batch", "2") == 0


@pytest.mark.slow
@pytest.mark.rehearsal
@pytest.mark.parametrize("family", ["pascal", "cityscapes", "coco_c", "coco_o"])
def test_one_cell_per_family_at_true_size(family: str, bench_env: Path, tmp_path: Path,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    doc = yaml.safe_load((GRIDS_DIR / "full.yaml").read_text())
    (exp,) = [e for e in doc["experiments"] if e["family"] == family]
    one = {**{k: v for k, v in doc.items() if k not in ("experiments", "name")}, **exp,
           "name": f"true_{family}", "backbones": [doc["backbones"][0]],
           "recipes": [{"name": "ft"}], "seeds": [0]}
    path = tmp_path / f"true_{family}.yaml"
    path.write_text(yaml.safe_dump(one))
    root = tmp_path_factory.getbasetemp() / "smoke_published"
    assert _smoke(str(path), root, "1") == 0
