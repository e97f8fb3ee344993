"""The committed demo records (results/runs) come from this code: two demo cells retrained
here, pinned as the demo grid pins them (``reproducible_cpu``), equal their committed records
to the last bit — metrics, summary and RGN. A change that moves the demo's numbers without
regenerating the records (and bumping RESULTS_VERSION) fails here, on any x86-64 CPU with
AVX2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
#: the two cells retrained (seed 0): (backbone, recipe name) — DP on the pretrained body, FT
#: through the from-scratch one
CELLS = (("efficientnet_lite0", "dp"), ("resnet18", "ft"))


def _subset_grid(path: Path) -> Path:
    """The demo grid reduced to :data:`CELLS` (same family, splits, schedule, seed and
    parameters: the same fingerprints)."""
    doc = yaml.safe_load((REPO / "benchmark" / "grids" / "demo.yaml").read_text())
    seed0 = [e for e in doc["experiments"] if "seeds" not in e]
    experiments = []
    for backbone, recipe in CELLS:
        e = next(e for e in seed0 if any(b["name"] == backbone for b in e["backbones"])
                 and any(r["name"] == recipe for r in e["recipes"]))
        b = next(x for x in e["backbones"] if x["name"] == backbone)
        r = next(x for x in e["recipes"] if x["name"] == recipe)
        experiments.append({"backbones": [b], "recipes": [r]})
    doc.update(name="demo_check", experiments=experiments)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_two_demo_cells_retrained_here_equal_the_committed_records(
        tmp_path: Path, demo_data_root: Path) -> None:
    env = {**os.environ, "BENCH_DATA": str(demo_data_root),
           "BENCH_RESULTS": str(tmp_path / "results"),
           "BENCH_ARTIFACTS": str(tmp_path / "artifacts")}
    grid = _subset_grid(tmp_path / "demo_check.yaml")
    p = subprocess.run(
        [sys.executable, "-m", "benchmark.run", "--grid", str(grid), "--workers", "2",
         "--threads", "1", "--no-report", "--quiet"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=1500)
    assert p.returncode == 0, p.stdout[-3000:]
    made = sorted((tmp_path / "results" / "runs").glob("*/record.json"))
    assert len(made) == len(CELLS), p.stdout[-2000:]
    for path in made:
        new = json.loads(path.read_text())
        committed_path = REPO / "results" / "runs" / new["fingerprint"] / "record.json"
        assert committed_path.is_file(), (
            f"{new['spec']['backbone']['name']} × {new['spec']['recipe']['name']}: no "
            f"committed record {new['fingerprint']} — the demo's fingerprints moved; "
            "regenerate results/ (README: committed records)")
        committed = json.loads(committed_path.read_text())
        for key in ("metrics", "summary", "rgn", "protocol"):
            assert new[key] == committed[key], (new["fingerprint"], key)
        assert new["provenance"]["cpu"]["pinned"] is True
        assert new["provenance"]["cpu"]["isa"]["aten"] == "avx2"
        assert new["provenance"]["cpu"]["isa"]["onednn"] == "off"
