"""The real pipeline on the real local SLURM cluster: job arrays reproduce the local
executor's leaderboard exactly, and a cell with two tasks trains with DDP across them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from benchmark.grid import load_grid
from benchmark.profiles import load_profile
from benchmark.report import main as report_main
from benchmark.run import main as run_main
from benchmark.slurm import SlurmExecutor
from tests.slurm_fixtures import wait_for
from tests.test_slurm_executor import all_settled

pytest_plugins = ["tests.slurm_fixtures"]  # slurm_cluster, slurm_store

GRID = """
name: e2e-slurm
experiments:
  - family: demo
    engine: frcnn_fpn_small
    train_split: demo_train
    id_split: demo_test
    ood_splits: [demo_stylized]
    corruption: {base: demo_test, names: [fog], severities: [3]}
    schedule: {iterations: 4, batch_size: 2, lr: 0.01, train_sizes: [160], test_size: 160,
               max_size: 160, checkpoint_every: 2, rgn_batches: 2, eval_batch_size: 4}
    backbones: [{name: efficientnet_lite0, weights: imagenet}]
    recipes: [{name: ft}, {name: dp, lr: 0.02}, {name: dp_ft, dp_lr: 0.02}]
    seeds: [0]
"""


def _records(results: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in results.glob("runs/*/record.json")}


@pytest.mark.slurm
def test_slurm_arrays_reproduce_the_local_leaderboard(
    slurm_cluster, slurm_store, tiny_data_root: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("BENCH_DATA", str(tiny_data_root))
    grid = tmp_path / "e2e.yaml"
    grid.write_text(GRID)
    argv = ["--grid", str(grid), "--executor", "slurm", "--profile", "local", "--no-report"]
    assert run_main(argv) == 0  # returns once queued
    out = capsys.readouterr().out
    assert "queued 3 cell(s)" in out and "2 sbatch call(s) in 2 stage(s)" in out, out
    fps = [s.fingerprint for s in load_grid(str(grid)).cells()]
    st = wait_for("3 real cells", lambda: all_settled(fps), 400, every=2)
    assert {s.state for s in st.values()} == {"done"}, [s.detail for s in st.values()]
    assert run_main(argv) == 0 and "queued 0 cell(s)" in capsys.readouterr().out

    # the same grid with the local executor, at the thread count the jobs had (1 CPU/task)
    local = tmp_path / "local"
    monkeypatch.setenv("BENCH_RESULTS", str(local / "results"))
    monkeypatch.setenv("BENCH_ARTIFACTS", str(local / "artifacts"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    finally:
        torch.set_num_threads(threads)
    on_slurm, here = _records(slurm_store.results), _records(local / "results")
    assert set(on_slurm) == set(here) == set(fps)
    for fp in fps:
        assert on_slurm[fp]["metrics"] == here[fp]["metrics"], fp
        assert on_slurm[fp]["summary"] == here[fp]["summary"], fp
        assert on_slurm[fp]["rgn"] == here[fp]["rgn"], fp
    md = {}
    for name, results in (("slurm", slurm_store.results), ("local", local / "results")):
        out_md = results.parent / "BENCHMARKS.md"  # plots are linked relative to it
        argv = ["--results", str(results), "--out", str(out_md), "--bootstrap", "0"]
        assert report_main(argv) == 0
        md[name] = out_md.read_text()
    table = md["local"].split("## Metric definitions")[0]
    assert md["slurm"].split("## Metric definitions")[0] == table and "efficientnet_lite0" in table


@pytest.mark.slurm
def test_a_cell_with_two_tasks_trains_with_ddp(
    slurm_cluster, slurm_store, tiny_data_root: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("BENCH_DATA", str(tiny_data_root))
    grid = tmp_path / "ddp.yaml"
    grid.write_text(
        GRID.replace(
            "[{name: ft}, {name: dp, lr: 0.02}, {name: dp_ft, dp_lr: 0.02}]", "[{name: ft}]"
        )
    )
    (spec,) = load_grid(str(grid)).runs
    profile = dataclasses.replace(load_profile("local"), tasks_per_run=2)
    ex = SlurmExecutor(profile, grid="ddp")
    ex.submit([spec])
    st = wait_for("DDP cell", lambda: all_settled([spec.fingerprint]), 300, every=2)
    assert st[spec.fingerprint].state == "done", st[spec.fingerprint].detail
    record = _records(slurm_store.results)[spec.fingerprint]
    assert record["provenance"]["world_size"] == 2
    assert record["metrics"]["demo_test"]["AP"] >= 0
