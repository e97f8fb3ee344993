"""Validating a grid stays fast: checking the demo grid and planning its cells (``run --dry-run``)
imports none of the deep-learning, image-corruption or plotting packages, which together
cost seconds before the first line of output (perf/bench_cli.py times it). Each check runs in
a fresh interpreter, with empty data, results and artifacts roots as perf/bench_cli.py uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
#: packages that validating a grid never uses
HEAVY = ("torch", "torchvision", "timm", "imagecorruptions", "skimage", "matplotlib")
TORCH = ("torch", "torchvision", "timm")

#: what ``run --grid demo --dry-run`` does, in one process
DRY_RUN = """
from benchmark.run import main
assert main(["--grid", "demo", "--dry-run"]) == 0
"""

#: every recipe of the demo grid validated as grid loading does (parameters, canonical cell,
#: parent chain), and its corruption names parsed
RECIPES = """
import yaml
from benchmark.data.corrupt import corruption_names, parse_severities
from benchmark.grid import _recipes, grid_path
from benchmark.recipes import get_recipe

doc = yaml.safe_load(grid_path("demo").read_text())
specs = [s for exp in doc["experiments"] for i, r in enumerate(exp["recipes"])
         for s in _recipes(r, i)]
assert {s.name for s in specs} >= {"cf_kd", "ft", "dp", "dp_ft", "reg_ft", "wise_ft"}, specs
for spec in specs:
    while spec is not None:
        spec = get_recipe(spec).parent_recipe()
assert len(corruption_names(doc["corruption"]["names"])) == 15
parse_severities("1-5")
"""


def _imported(code: str, tmp_path: Path) -> set[str]:
    """The :data:`HEAVY` packages imported by ``code`` run in a fresh interpreter."""
    env = {**os.environ, **{k: str(tmp_path / k.lower())
                            for k in ("BENCH_DATA", "BENCH_RESULTS", "BENCH_ARTIFACTS")}}
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def dry_run_imports(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return _imported(DRY_RUN, tmp_path_factory.mktemp("startup"))


def test_recipes_and_corruption_names_validate_without_heavy_packages(tmp_path: Path) -> None:
    assert _imported(RECIPES, tmp_path) == set()


def test_a_dry_run_imports_no_corruption_or_plotting_package(dry_run_imports: set[str]) -> None:
    assert dry_run_imports - set(TORCH) == set()


def test_a_dry_run_imports_no_torch(dry_run_imports: set[str]) -> None:
    assert dry_run_imports & set(TORCH) == set()
