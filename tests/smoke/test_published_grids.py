"""The smoke of the published grids.

- CI's slow stage: one cell per family (the ``full`` grid's first backbone, FT) through the
  family's stand-in raw formats, the real converters, its detector and every split, at input
  sizes × 0.16 with the true per-device batch.
- ``rehearsal`` (``pytest --runslow -m rehearsal``; not in CI): every kind of every published
  grid at sizes × 0.1, batch <= 2, one iteration and one image per split — hours on 2 cores
  (238 kinds; a COCO kind evaluates 76 splits, about a minute each here) — and one cell per
  family at its true size (a COCO-C iteration is 16 images at 640–800 px). The detectron2 grid
  runs only where detectron2 is importable.

CI's default run rehearses one kind end to end (``test_smoke_run.py``).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from benchmark.grid import GRIDS_DIR, load_grid
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


FAMILIES = ["pascal", "cityscapes", "coco_c", "coco_o"]


def _one_cell_of(family: str, folder: Path) -> Path:
    """The ``full`` grid's experiment of ``family`` narrowed to its first backbone, FT, seed 0:
    the family's converters, detector (Mask R-CNN for Cityscapes), class count and every
    split (75 corrupted ones for COCO-C)."""
    doc = yaml.safe_load((GRIDS_DIR / "full.yaml").read_text())
    (exp,) = [e for e in doc["experiments"] if e["family"] == family]
    one = {**{k: v for k, v in doc.items() if k not in ("experiments", "name")}, **exp,
           "name": f"one_{family}", "backbones": [doc["backbones"][0]],
           "recipes": [{"name": "ft"}], "seeds": [0]}
    path = folder / f"one_{family}.yaml"
    path.write_text(yaml.safe_dump(one))
    return path


def _records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/results/runs/*/record.json"))]


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_one_cell_per_family_through_its_converters_and_every_split(
        family: str, bench_env: Path, tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """In CI's slow stage: sizes × 0.16 at the true batch (about 2.5 min for the four on
    2 cores); every split of the family is scored."""
    root = tmp_path / "smoke"
    assert _smoke(str(_one_cell_of(family, tmp_path)), root, "0.16") == 0
    (record,) = _records(root)
    spec = load_grid(str(tmp_path / f"one_{family}.yaml"), resolve_data=False,
                     check_weights=False).cells()[0]
    assert record["smoke"] is True and set(record["metrics"]) == set(spec.eval_splits)
    assert len(spec.eval_splits) >= {"pascal": 4, "cityscapes": 3, "coco_c": 76,
                                     "coco_o": 7}[family]


@pytest.mark.slow
@pytest.mark.rehearsal
@pytest.mark.parametrize("family", FAMILIES)
def test_one_cell_per_family_at_true_size(family: str, bench_env: Path, tmp_path: Path,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.getbasetemp() / "smoke_published"
    assert _smoke(str(_one_cell_of(family, tmp_path)), root, "1") == 0
