"""The runner end to end on tiny inputs: grid → train → evaluate → record, idempotence,
resume after kill -9, and what each recipe trains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmark.grid import load_grid
from benchmark.pipeline import train_stage
from benchmark.recipes import parent_of
from benchmark.run import main as run_main
from benchmark.store import Cell, TrainingDir
from tests.conftest import TESTS, TINY_GRID

FINAL, LAST = TrainingDir.FINAL, TrainingDir.LAST
RESUME_GRID = TESTS / "grids" / "resume.yaml"


def _records(results: Path) -> dict[str, dict]:
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted((results / "runs").glob("*/record.json"))
    }


def test_tiny_grid_end_to_end_and_rerun_skips(bench_env: Path, capsys):
    assert run_main(["--grid", str(TINY_GRID), "--quiet", "--no-report"]) == 0
    records = _records(bench_env)
    grid = load_grid(str(TINY_GRID))
    assert set(records) == {s.fingerprint for s in grid.cells()} and len(records) == 6
    for fp, rec in records.items():
        spec = rec["spec"]
        assert set(rec["metrics"]) == {
            "demo_test",
            "demo_stylized",
            "demo_sketch",
            "demo_inked",
            "demo_test-C.gaussian_noise.3",
            "demo_test-C.fog.3",
        }
        s = rec["summary"]
        assert set(s["ood"]) == {"demo_stylized", "demo_sketch", "demo_inked"}
        assert s["ood_mean"] == pytest.approx(sum(s["ood"].values()) / 3)
        assert s["gap"] == pytest.approx(s["id_ap"] - s["ood_mean"])
        assert s["P"] == rec["metrics"]["demo_test"]["AP"]
        assert set(s["corruption"]) == {"gaussian_noise", "fog"}
        assert rec["rgn"]["rgn"] > 0 and rec["rgn"]["rgn_l2"] > 0
        prov = rec["provenance"]
        assert prov["datasets"]["demo_train"] and torch.__version__.startswith(
            prov["packages"]["torch"]
        )
        for split, rel in rec["artifacts"]["predictions"].items():
            preds = json.loads((TrainingDir(fp).root / rel).read_text())
            assert isinstance(preds, list), split
        assert spec["backbone"]["name"] in ("efficientnet_lite0", "resnet18")
    # DP-FT shares the DP cell's training: exactly two DP trainings for two backbones
    dp = [s for s in grid.cells() if s.recipe.name == "dp"]
    dpft = [s for s in grid.cells() if s.recipe.name == "dp_ft"]
    assert {parent_of(s).fingerprint for s in dpft} == {s.fingerprint for s in dp}

    mtimes = {fp: Cell(fp).path(Cell.RECORD).stat().st_mtime_ns for fp in records}
    capsys.readouterr()
    t0 = time.time()
    assert run_main(["--grid", str(TINY_GRID), "--quiet", "--no-report"]) == 0
    assert "0 cell(s) done, 0 failed, 6 already finished" in capsys.readouterr().out
    assert time.time() - t0 < 30
    assert mtimes == {fp: Cell(fp).path(Cell.RECORD).stat().st_mtime_ns for fp in records}


def _state(train_fp: str) -> dict[str, torch.Tensor]:
    return torch.load(TrainingDir(train_fp).final, map_location="cpu", weights_only=False)[
        "model"
    ]


def test_recipes_train_what_they_claim(bench_env: Path):
    """DP leaves every backbone weight at its pretrained value; FT changes the unfrozen
    stages but not the frozen stem; DP-FT starts from DP's final weights."""
    grid = load_grid(str(TINY_GRID))
    by = {(s.backbone.name, s.recipe.name): s for s in grid.cells()}
    ft, dp, dpft = (by[("efficientnet_lite0", r)] for r in ("ft", "dp", "dp_ft"))
    for spec in (ft, dpft):  # dp is trained as dp_ft's parent
        train_stage(spec, progress=False)
    from benchmark.models.backbones import build_body

    pre = build_body("efficientnet_lite0", "imagenet", None).state_dict()
    dp_w, ft_w, dpft_w = (
        _state(dp.train_fingerprint),
        _state(ft.train_fingerprint),
        _state(dpft.train_fingerprint),
    )
    body = {k: v for k, v in pre.items()}
    for k, v in body.items():
        assert torch.equal(dp_w["model.backbone.body." + k], v), k
    stem = [k for k in body if k.startswith("stages.0.") and k.endswith("weight")]
    late = [k for k in body if k.startswith("stages.4.") and k.endswith("weight")]
    assert stem and late
    assert all(torch.equal(ft_w["model.backbone.body." + k], body[k]) for k in stem)
    assert any(not torch.equal(ft_w["model.backbone.body." + k], body[k]) for k in late)
    # DP-FT fine-tunes the backbone too, and its RGN was measured at DP's final weights
    assert any(not torch.equal(dpft_w["model.backbone.body." + k], body[k]) for k in late)
    start_ft = torch.load(TrainingDir(ft.train_fingerprint).final, weights_only=False)["rgn"]
    start_dpft = torch.load(TrainingDir(dpft.train_fingerprint).final, weights_only=False)[
        "rgn"
    ]
    assert start_ft["rgn"] != start_dpft["rgn"]


def _run_resume_grid(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmark.run",
            "--grid",
            str(RESUME_GRID),
            "--quiet",
            "--no-report",
        ],
        env=env,
        cwd=TESTS.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_kill_9_mid_training_resumes_to_identical_metrics(tmp_path: Path, tiny_data_root: Path):
    def env(name: str) -> dict[str, str]:
        return {
            **os.environ,
            "BENCH_DATA": str(tiny_data_root),
            "BENCH_RESULTS": str(tmp_path / name / "results"),
            "BENCH_ARTIFACTS": str(tmp_path / name / "artifacts"),
        }

    # uninterrupted reference
    ref = _run_resume_grid(env("ref"))
    assert ref.wait(timeout=300) == 0, ref.stdout.read().decode()

    # killed after its second checkpoint, then rerun
    killed = env("killed")
    proc = _run_resume_grid(killed)
    art = Path(killed["BENCH_ARTIFACTS"]) / "train"
    deadline = time.time() + 240
    while time.time() < deadline:
        lasts = list(art.glob(f"*/{LAST}"))
        if lasts and torch.load(lasts[0], weights_only=False)["iteration"] >= 4:
            break
        assert proc.poll() is None, "training finished before it could be killed"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    results = Path(killed["BENCH_RESULTS"]) / "runs"
    assert not list(results.glob("*/record.json")), "a killed run must leave no record"
    assert not list(art.glob(f"*/{FINAL}"))
    it_at_kill = torch.load(next(art.glob(f"*/{LAST}")), weights_only=False)["iteration"]
    assert 4 <= it_at_kill < 16

    again = _run_resume_grid(killed)
    assert again.wait(timeout=300) == 0, again.stdout.read().decode()
    rec_ref = next(iter(_records(Path(env("ref")["BENCH_RESULTS"])).values()))
    rec_res = next(iter(_records(Path(killed["BENCH_RESULTS"])).values()))
    assert rec_res["fingerprint"] == rec_ref["fingerprint"]
    assert rec_res["metrics"] == rec_ref["metrics"]
    w_ref = torch.load(
        next((tmp_path / "ref" / "artifacts" / "train").glob(f"*/{FINAL}")), weights_only=False
    )["model"]
    w_res = torch.load(next(art.glob(f"*/{FINAL}")), weights_only=False)["model"]
    assert all(torch.equal(w_ref[k], w_res[k]) for k in w_ref)


def test_failing_cell_is_recorded_and_others_continue(bench_env: Path, tmp_path: Path):
    grid = tmp_path / "bad_lr.yaml"
    text = RESUME_GRID.read_text().replace(
        "recipes:\n      - {name: ft}",
        "recipes:\n      - {name: ft}\n      - {name: ft, lr: 1.0e+6}",
    )
    text = text.replace("iterations: 16", "iterations: 4")
    grid.write_text(text)
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 1
    runs = bench_env / "runs"
    assert len(list(runs.glob("*/record.json"))) == 1
    failed = list(runs.glob("*/failed.json"))
    assert len(failed) == 1
    assert "loss is" in json.loads(failed[0].read_text())["error"]
    # a rerun skips the failed cell unless asked, and still exits non-zero because of it
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 1


def test_pascal_family_reports_voc_protocol_next_to_coco(bench_env: Path, tmp_path: Path):
    grid = tmp_path / "pascal.yaml"
    text = RESUME_GRID.read_text().replace("family: demo", "family: pascal")
    grid.write_text(text.replace("iterations: 16", "iterations: 2"))
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    (rec,) = _records(bench_env).values()
    for split in ("demo_test", "demo_sketch"):
        voc = rec["metrics"][split]["voc"]
        assert voc["protocol"] == "voc" and set(voc) >= {"AP", "AP50", "AP75", "per_class"}
        assert "AP" in rec["metrics"][split]  # COCO numbers kept alongside
    s = rec["summary"]
    assert s["protocol"] == "voc"
    assert s["id_ap"] == rec["metrics"]["demo_test"]["voc"]["AP"]
    assert s["ood"]["demo_sketch"] == rec["metrics"]["demo_sketch"]["voc"]["AP"]


def test_runs_differing_only_in_eval_splits_share_one_training(bench_env: Path, tmp_path: Path):
    grid = tmp_path / "shared.yaml"
    text = RESUME_GRID.read_text().replace("iterations: 16", "iterations: 2")
    exp = text[text.index("  - family: demo") :]
    second = exp.replace("ood_splits: [demo_sketch]", "ood_splits: [demo_inked]")
    grid.write_text(text + second)
    g = load_grid(str(grid))
    a, b = g.runs
    assert a.fingerprint != b.fingerprint and a.train_fingerprint == b.train_fingerprint
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    records = _records(bench_env)
    assert set(records) == {a.fingerprint, b.fingerprint}
    trainings = list((bench_env.parent / "artifacts" / "train").glob(f"*/{FINAL}"))
    assert len(trainings) == 1
    ra, rb = records[a.fingerprint], records[b.fingerprint]
    assert ra["metrics"]["demo_test"] == rb["metrics"]["demo_test"]


def test_training_lock_wait_is_bounded(tmp_path: Path):
    import fcntl

    from benchmark.errors import BenchmarkError
    from benchmark.pipeline import training_lock

    lock = tmp_path / "train.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        t0 = time.time()
        with pytest.raises(BenchmarkError, match=str(lock)):
            with training_lock(lock, timeout_s=1.5):
                pass
        assert 1.5 <= time.time() - t0 < 10
    with training_lock(lock, timeout_s=1.5):  # free again
        pass


def test_unbuilt_corrupted_split_is_evaluated_on_the_fly_with_identical_results(
    tmp_path: Path, tiny_data_root: Path, monkeypatch: pytest.MonkeyPatch
):
    import shutil

    grid = tmp_path / "fly.yaml"
    text = RESUME_GRID.read_text().replace("iterations: 16", "iterations: 2")
    grid.write_text(
        text.replace(
            "ood_splits: [demo_sketch]",
            "ood_splits: [demo_sketch]\n    corruption: {base: demo_test, names: [fog], "
            "severities: [3]}",
        )
    )
    data = tmp_path / "data"
    shutil.copytree(tiny_data_root, data)
    monkeypatch.setenv("BENCH_DATA", str(data))
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BENCH_ARTIFACTS", str(tmp_path / "artifacts"))
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    shutil.rmtree(data / "demo_test-C.fog.3")  # not materialised any more
    (built,) = load_grid(str(grid)).runs  # still validates: the base split is there
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    records = _records(tmp_path / "results")
    assert len(records) == 2  # a different data fingerprint: a run of its own
    a, b = records.values()
    assert a["metrics"]["demo_test-C.fog.3"] == b["metrics"]["demo_test-C.fog.3"]
    assert a["summary"]["mPC"] == b["summary"]["mPC"]
    assert built.fingerprint in records
    from benchmark.data.split import resolve_split
    from benchmark.errors import DataError

    shutil.rmtree(data / "demo_test")
    with pytest.raises(DataError, match="demo_test-C.fog.3.*neither built.*prepare corrupt"):
        resolve_split("demo_test-C.fog.3")
