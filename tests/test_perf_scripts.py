"""CI smoke test of the throughput scripts (perf/): ``--small`` runs on the CPU and
prints one table with the suite's engine, stock torchvision and the ratio between them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import TESTS

PERF = TESTS.parent / "perf"


@pytest.mark.parametrize("script", ["train_throughput.py", "infer_throughput.py"])
def test_small_setting_prints_both_engines_and_their_ratio(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(PERF / script), "--small", "--precisions", "fp32",
         "--channels-last", "off", "--iters", "0,1"],
        capture_output=True, text=True, timeout=600, cwd=PERF,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    header = next(ln for ln in lines if ln.startswith("| engine |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[0] == "engine" and columns[-1] == "ratio to torchvision"
    rows = {ln.split("|")[1].strip(): [c.strip() for c in ln.strip("|").split("|")]
            for ln in lines if ln.startswith("| ") and not ln.startswith(("| engine", "|---"))}
    suite = rows["suite frcnn_fpn"]
    stock = rows["torchvision stock"]
    assert suite[1:3] == stock[1:3] == ["fp32", "off"]
    assert stock[-1] == "1.00x"  # the reference of the ratio column is torchvision itself
    ratio, rate, ref = float(suite[-1].rstrip("x")), float(suite[3]), float(stock[3])
    assert ratio == pytest.approx(rate / ref, rel=0.02, abs=0.01)
