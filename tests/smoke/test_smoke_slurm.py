"""The smoke on the real local SLURM cluster (``--executor slurm --profile local``): the kinds
run as one job array whose tasks measure themselves, the command waits and prints what the
local smoke prints; a task killed mid-way fails its kind at its stage; Ctrl-C cancels the
array."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from benchmark.store import REPO_ROOT
from tests.slurm_fixtures import wait_for
from tests.smoke.conftest import smoke, write_grid

pytest_plugins = ["tests.slurm_fixtures"]  # slurm_cluster

KIND = "pascal/frcnn_fpn_small/{}/ft/b2@480-800/800<=1333"
LITE0, RESNET18 = "efficientnet_lite0[imagenet]", "resnet18[torchvision_resnet18]"
ARRAY = re.compile(r"as SLURM array job (\d+) on profile 'local'")


@pytest.fixture
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No prepared split, no weights file and a private results root: every input is a
    stand-in."""
    for name in ("data", "weights", "results", "artifacts"):
        monkeypatch.setenv(f"BENCH_{name.upper()}", str(tmp_path / name))
    return tmp_path / "results"


def _two_kinds(tmp_path: Path) -> Path:
    """Two backbones: the packaged ImageNet one and a catalogue file the smoke stands in for
    (its entry reaches the tasks through the pickled task)."""
    grid = write_grid(tmp_path, "pascal_two")
    grid.write_text(grid.read_text().replace(
        "backbones: [{name: efficientnet_lite0, weights: imagenet}]",
        "backbones: [{name: efficientnet_lite0, weights: imagenet}, "
        "{name: resnet18, weights: torchvision_resnet18}]"))
    return grid


def _sacct(array: str) -> dict[str, str]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", array, "-o", "JobID,State"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return dict(line.split("|", 1) for line in out.splitlines() if line)


@pytest.mark.slurm
def test_the_kinds_run_as_one_array_and_the_cost_sheet_is_collected(
        slurm_cluster, no_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "smoke"
    assert smoke(_two_kinds(tmp_path), root, "--executor", "slurm", "--profile", "local",
                 inline=False) == 0
    out = capsys.readouterr().out
    (array,) = ARRAY.findall(out)
    assert "weights torchvision_resnet18: absent; structure-only stand-in" in out
    for backbone in (LITE0, RESNET18):
        assert re.search(rf"\] ok {re.escape(KIND.format(backbone))}: [\d.]+ s/iter, "
                         r"peak RSS [\d,]+ MB\n", out), out
    assert "cost sheet of grid 'pascal_two': 4 cells, 4 trainings" in out
    assert "at the s/iter measured here (node " in out  # the nodes' device, not this one's
    kinds = json.loads((root / "pascal_two" / "smoke.json").read_text())
    assert [k["stage"] for k in kinds] == [None, None]
    assert all(k["peak_rss_mb"] > 100 for k in kinds)
    records = [json.loads(p.read_text())
               for p in (root / "pascal_two" / "results" / "runs").glob("*/record.json")]
    assert len(records) == 2 and all(r["smoke"] is True for r in records)
    assert sorted(r["spec"]["backbone"]["weights"] for r in records) == [
        "imagenet", "standin_torchvision_resnet18"]
    # one array of two tasks, both done (a task's result is written before its process
    # ends, and sacct says so a moment later), their results in the submitit folder
    done = {f"{array}_0": "COMPLETED", f"{array}_1": "COMPLETED"}
    wait_for("sacct to list both tasks COMPLETED", lambda: _sacct(array) == done, timeout=60)
    (folder,) = (root / "pascal_two" / "slurm").iterdir()
    assert {p.name for p in folder.glob("*_result.pkl")} == {f"{array}_0_0_result.pkl",
                                                             f"{array}_1_0_result.pkl"}
    assert not no_data.exists()  # nothing in the results root outside the smoke's


def _step_pid(job_id: str) -> int:
    """The pid of the task's own process (step 0; not the batch script or srun)."""
    raw = subprocess.run(["squeue", "-h", "-o", "%A", "-j", job_id], capture_output=True,
                         text=True, timeout=30, check=True).stdout.strip()
    out = subprocess.run(["scontrol", "listpids", raw], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    (pid,) = [int(f[0]) for f in (line.split() for line in out.splitlines()[1:]) if f[2] == "0"]
    return pid


@pytest.mark.slurm
def test_a_task_killed_mid_way_fails_its_kind_at_its_stage(
        slurm_cluster, no_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "smoke"
    code: list[int] = []
    run = threading.Thread(target=lambda: code.append(smoke(
        write_grid(tmp_path), root, "--executor", "slurm", "--profile", "local",
        "--smoke-iters", "30", inline=False)))
    run.start()
    try:
        stage = wait_for("the task to start training", lambda: next(
            (p for p in root.glob("pascal_small/slurm/*/*.stage") if p.read_text() == "train"),
            None), 120, every=0.1)
        os.kill(_step_pid(stage.stem), signal.SIGKILL)  # as the kernel's out-of-memory kill
    finally:
        run.join(180)
    assert code == [1]
    err = [line for line in capsys.readouterr().err.splitlines() if "FAILED" in line]
    assert len(err) == 1, err
    assert err[0].startswith(f"smoke FAILED: {KIND.format(LITE0)} at train: its SLURM job "
                             f"{stage.stem} ended FAILED without a result"), err
    assert err[0].endswith(f"(log: {stage.parent / f'{stage.stem}_0_log.out'})")


@pytest.mark.slurm
def test_ctrl_c_while_waiting_cancels_the_array(slurm_cluster, no_data: Path,
                                                tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "benchmark.run", "--grid", str(_two_kinds(tmp_path)),
           "--smoke", "--smoke-iters", "1", "--smoke-images", "1", "--smoke-scale", "0.2",
           "--smoke-root", str(tmp_path / "smoke"), "--quiet", "--executor", "slurm",
           "--profile", "local"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if (found := ARRAY.search(line)) is not None:
                break
        else:
            pytest.fail(f"no array submitted: {proc.stderr and proc.stderr.read()}")
        wait_for("both tasks to run", lambda: len(list(
            (tmp_path / "smoke").glob("pascal_two/slurm/*/*.stage"))) == 2, 120, every=0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    array = found.group(1)
    assert proc.returncode == 130, err
    assert f"cancelled SLURM array job {array} (scancel)" in err
    states = wait_for("the tasks to be cancelled", lambda: (s := _sacct(array)) and all(
        v.startswith("CANCELLED") for v in s.values()) and s, 30)
    assert set(states) == {f"{array}_0", f"{array}_1"}
