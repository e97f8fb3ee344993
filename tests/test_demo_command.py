"""`bash scripts/dev.sh demo` end to end, on the tiny grid (BENCH_DEMO_GRID): it trains into
a root of its own, renders that run's leaderboard there, ends with the reproduction verdict
against a reference root, and a second invocation trains nothing."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import TINY_GRID

REPO = Path(__file__).resolve().parent.parent


def _demo(root: Path, reference: Path, data: Path) -> tuple[int, str, float]:
    env = {**os.environ, "BENCH_DEMO_ROOT": str(root), "BENCH_DEMO_REFERENCE": str(reference),
           "BENCH_DEMO_GRID": str(TINY_GRID), "BENCH_DATA": str(data)}
    t0 = time.monotonic()
    p = subprocess.run(["bash", "scripts/dev.sh", "demo", "--quiet"], cwd=REPO, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    return p.returncode, p.stdout, time.monotonic() - t0


@pytest.mark.slow
def test_demo_trains_into_its_own_root_and_ends_with_the_verdict(
        tmp_path: Path, tiny_data_root: Path) -> None:
    empty = tmp_path / "empty" / "results"
    (empty / "runs").mkdir(parents=True)
    rc, out, _ = _demo(tmp_path / "first", empty, tiny_data_root)
    assert rc == 1, out  # nothing to reproduce: every run is on one side only
    assert "[6/6] done" in out and "only in this run (6)" in out
    assert (tmp_path / "first" / "BENCHMARKS.md").is_file()
    assert (tmp_path / "first" / "results" / "leaderboard.html").is_file()
    assert len(list((tmp_path / "first" / "results" / "runs").iterdir())) == 6

    reference = tmp_path / "first" / "results"
    rc, out, _ = _demo(tmp_path / "second", reference, tiny_data_root)
    assert rc == 0, out
    assert out.count(": bit-identical") == 6
    assert "VERDICT: reproduced 6/6 (6 bit-identical" in out
    assert out.rstrip().splitlines()[-2].startswith("VERDICT")

    rc, out, took = _demo(tmp_path / "second", reference, tiny_data_root)
    assert rc == 0, out
    assert "0 cell(s) done, 0 failed, 6 already finished" in out and "start" not in out
    assert "VERDICT: reproduced 6/6" in out and took < 60
