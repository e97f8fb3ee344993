"""CI smoke test of the throughput scripts (perf/): ``--small`` runs on the CPU and
prints one table with the suite's engine, stock torchvision and the ratio between them; the
GPU suite's CPU check writes its JSON and records a step that timed out."""

from __future__ import annotations

import json
import os
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


@pytest.mark.slow
def test_gpu_suite_cpu_check_records_a_timed_out_step_and_runs_the_next(tmp_path) -> None:
    proc = subprocess.run(
        ["bash", str(PERF / "gpu_suite.sh"), "--cpu-check", "--only", "env,train,infer",
         "--timeout", "train=2"],
        capture_output=True, text=True, timeout=600, cwd=TESTS.parent,
        env={**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable},
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]  # a step timed out
    assert (tmp_path / "gpu_suite.log").stat().st_size > 0
    report = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert report["mode"] == "cpu-check"
    steps = report["steps"]
    assert list(steps) == ["env", "train", "infer"]
    assert steps["train"]["status"] == "timed out" and steps["train"]["rc"] == 124
    assert steps["train"]["timeout_s"] == 2 and "error" in steps["train"]
    assert steps["env"]["status"] == steps["infer"]["status"] == "ok"
    assert report["environment"]["torch"] == report["results"]["infer"]["environment"]["torch"]
    assert report["results"]["train"] is None
    rows = report["results"]["infer"]["rows"]
    assert [r["engine"] for r in rows][-1] == "torchvision stock"
    assert set(report["figures"]) == {
        "train_amp_vs_stock_torchvision", "infer_amp_vs_stock_torchvision",
        "regulariser_overhead_pct", "coco_c_sweep_minutes"}
    infer = report["figures"]["infer_amp_vs_stock_torchvision"]
    assert infer["value"] is None and infer["met"] is None  # fp32 only on the CPU: no AMP row
    assert infer["fp32_ratio"] == pytest.approx(rows[0]["ratio_to_torchvision"])
    assert report["figures"]["train_amp_vs_stock_torchvision"]["value"] is None
