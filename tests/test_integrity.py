"""Nothing silently wrong: each numbered fault of the integrity issue, reproduced with real
files, real processes and real signals, and the behaviour that replaces it.

 1 a changed image            7 exit status with a failed cell
 2 a damaged record           8 a report that cannot be written
 3 damaged checkpoints/metrics 9 Ctrl-C / SIGTERM
 4 bookkeeping vs seeds      10 leftovers, `benchmark.clean`
 5 local runs in `status`    11 disk full names the path
 6 workers of a killed parent 12 bad input before anything runs
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from benchmark.grid import load_grid
from benchmark.run import main as run_main
from benchmark.status import cell_states
from benchmark.store import Cell, TrainingDir, file_lock
from tests.conftest import TESTS, fail_under_ci_else_skip

RESUME = (TESTS / "grids" / "resume.yaml").read_text()  # one FT cell, 16 iterations
REPO = TESTS.parent


def _grid(tmp_path: Path, name: str = "g", **schedule: object) -> Path:
    """The one-cell resume grid with schedule keys replaced (a small lr: long runs of the
    tiny data must not diverge)."""
    schedule = {"lr": 0.002, **schedule}
    text = RESUME
    for key, value in schedule.items():
        old = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{key}:"))
        text = text.replace(old, f"{old.split(':')[0]}: {value}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, env=env or dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _final_weights(spec) -> dict[str, torch.Tensor]:
    return torch.load(TrainingDir(spec.train_fingerprint).final, weights_only=False)["model"]


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _wait_for(cond, timeout: float = 240.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        if proc is not None:
            assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)


@pytest.fixture
def own_data(tmp_path: Path, tiny_data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the tiny data (this test changes files in it)."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data_root, data, symlinks=True)
    monkeypatch.setenv("BENCH_DATA", str(data))
    return data


# ---------------------------------------------------------------------------------------- 1
def test_1_a_changed_image_stops_the_run_before_training(bench_env, own_data, tmp_path, capsys):
    grid = _grid(tmp_path)
    images = sorted((own_data / "demo_test" / "images").iterdir())
    shutil.copyfile(images[1], images[0])  # a valid image, just not the one prepared
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(images[0]) in err[0]
    assert "expected sha256" in err[0] and err[0].count("sha256") >= 2
    assert not (bench_env.parent / "artifacts" / "train").exists()  # nothing trained


def test_1_verification_is_cached_and_verify_forces_it(bench_env, own_data):
    from benchmark.data.split import load_split
    from benchmark.data.verify import verify_split

    split = load_split("demo_test")
    n = len(split.coco["images"])
    assert verify_split(split) == (n, n)  # first time: every file hashed
    assert verify_split(split) == (n, 0)  # cached by (size, mtime, inode)
    first = split.image_path(split.coco["images"][0]["file_name"])
    os.utime(first)  # touched, same content: hashed again, and accepted
    assert verify_split(split) == (n, 1)
    assert verify_split(split, full=True) == (n, n)


# ---------------------------------------------------------------------------------------- 2
def test_2_a_damaged_record_is_not_done_and_the_cell_runs_again(bench_env, tmp_path, capsys):
    grid = _grid(tmp_path, iterations=4)
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    (spec,) = load_grid(str(grid)).runs
    record = Cell(spec.fingerprint).path(Cell.RECORD)
    good = json.loads(record.read_text())
    record.write_text(record.read_text()[:200])  # truncated
    (state,) = cell_states([spec.fingerprint])
    assert state.state == "unsubmitted" and "damaged record" in state.detail
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    assert f"{record}: damaged record" in capsys.readouterr().err
    again = json.loads(record.read_text())
    assert again["metrics"] == good["metrics"] and again["checksum"] != ""
    # a hand-edited number is caught by the checksum
    again["summary"]["id_ap"] = 0.99
    record.write_text(json.dumps(again))
    (state,) = cell_states([spec.fingerprint])
    assert state.state == "unsubmitted" and "checksum mismatch" in state.detail


# ---------------------------------------------------------------------------------------- 3
def test_3_damaged_checkpoint_and_metrics_are_redone(bench_env, tmp_path, capsys):
    grid = _grid(tmp_path, iterations=4)
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    (spec,) = load_grid(str(grid)).runs
    weights = _final_weights(spec)
    cell = Cell(spec.fingerprint)
    metrics = json.loads(cell.path(Cell.RECORD).read_text())["metrics"]
    out = TrainingDir(spec.train_fingerprint)
    out.final.write_bytes(out.final.read_bytes()[:1000])  # truncated final checkpoint
    evals = out.evaluation(spec.eval_fingerprint)
    evals.metrics("demo_sketch").write_text('{"AP": 0.1')  # truncated metrics file
    cell.path(Cell.RECORD).unlink()
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert f"{out.final}: damaged final checkpoint" in err
    assert (out.dir / "model_final.pt.damaged").is_file()
    assert _same_weights(_final_weights(spec), weights)  # trained again, to the same weights
    assert json.loads(cell.path(Cell.RECORD).read_text())["metrics"] == metrics


# ---------------------------------------------------------------------------------------- 4
def test_4_bookkeeping_settings_change_no_seed_and_no_weights(bench_env, tmp_path):
    a = _grid(tmp_path, "a", iterations=6, checkpoint_every=2, rgn_batches=1, eval_batch_size=4)
    b = _grid(tmp_path, "b", iterations=6, checkpoint_every=5, rgn_batches=2, eval_batch_size=1)
    (sa,), (sb,) = load_grid(str(a)).runs, load_grid(str(b)).runs
    assert sa.seed_fingerprint == sb.seed_fingerprint  # the training's draws are the same
    assert sa.train_fingerprint != sb.train_fingerprint  # RGN is measured over other batches
    assert sa.fingerprint != sb.fingerprint  # the record says what was measured and how
    c = _grid(tmp_path, "c", iterations=6, checkpoint_every=5, rgn_batches=1, eval_batch_size=4)
    (sc,) = load_grid(str(c)).runs
    assert sc.fingerprint == sa.fingerprint  # the checkpoint interval is in no fingerprint
    for grid in (a, b):
        assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    assert _same_weights(_final_weights(sa), _final_weights(sb))


# ---------------------------------------------------------------------------------------- 5
def test_5_a_local_run_shows_as_running_and_a_second_run_waits(bench_env, tmp_path):
    grid = _grid(tmp_path, iterations=40)
    (spec,) = load_grid(str(grid)).runs
    first = _cli("benchmark.run", "--grid", str(grid), "--quiet", "--no-report")
    _wait_for(lambda: cell_states([spec.fingerprint])[0].state == "running", proc=first)
    (state,) = cell_states([spec.fingerprint])
    assert f"pid {first.pid} on " in state.detail
    second = _cli("benchmark.run", "--grid", str(grid), "--quiet", "--no-report")
    assert second.wait(timeout=300) == 0, second.communicate()
    assert "1 cell(s) queued or running elsewhere: left to them" in second.communicate()[0]
    assert first.wait(timeout=300) == 0, first.communicate()
    evals = TrainingDir(spec.train_fingerprint).evaluation(spec.eval_fingerprint)
    mtimes = {p: p.stat().st_mtime_ns for p in evals.dir.rglob("*.json")}
    # a third run finds it done: no split is evaluated again
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    assert mtimes == {p: p.stat().st_mtime_ns for p in evals.dir.rglob("*.json")}
    assert cell_states([spec.fingerprint])[0].state == "done"


def test_5_waiting_for_another_process_is_not_counted_as_work(bench_env, tmp_path):
    from benchmark.pipeline import run_cell

    (spec,) = load_grid(str(_grid(tmp_path, iterations=2))).runs
    held = threading.Event()

    def hold() -> None:  # another process training the same run, for 4 s
        with file_lock(TrainingDir(spec.train_fingerprint).lock, 10):
            held.set()
            time.sleep(4)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    t0 = time.monotonic()
    record = run_cell(spec, progress=False)
    elapsed = time.monotonic() - t0
    thread.join()
    assert elapsed >= 4
    assert record["provenance"]["wall_time_s"] <= elapsed - 3.5


# ---------------------------------------------------------------------------------------- 6
def test_6_workers_die_with_their_parent(bench_env, tmp_path):
    grid = _grid(tmp_path, iterations=400)
    text = grid.read_text().replace("recipes:\n      - {name: ft}",
                                    "recipes:\n      - {name: ft}\n      - {name: dp}")
    grid.write_text(text)
    specs = load_grid(str(grid)).runs
    parent = _cli("benchmark.run", "--grid", str(grid), "--workers", "2", "--threads", "1",
                  "--quiet", "--no-report")

    lasts = [TrainingDir(s.train_fingerprint).last for s in specs]
    _wait_for(lambda: all(p.is_file() for p in lasts), proc=parent)  # both are training
    pids = [Cell(s.fingerprint).read(Cell.RUNNING)["pid"] for s in specs]
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=30)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"

    _wait_for(lambda: all(gone(p) for p in pids), timeout=60)
    assert not any(Cell(s.fingerprint).path(Cell.RECORD).exists() for s in specs)
    # they stopped at a step boundary and saved it (SIGTERM from the kernel, as Ctrl-C)
    states = cell_states([s.fingerprint for s in specs])
    assert [c.state for c in states] == ["unsubmitted", "unsubmitted"]
    saved = [torch.load(p, weights_only=False)["iteration"] for p in lasts]
    assert all(0 < it < 400 for it in saved)


# ---------------------------------------------------------------------------------------- 7
def test_7_run_exits_nonzero_while_a_cell_of_the_grid_is_failed(bench_env, tmp_path, capsys):
    grid = _grid(tmp_path, iterations=4)
    grid.write_text(grid.read_text().replace("{name: ft}", "{name: ft, lr: 1.0e+6}"))
    (spec,) = load_grid(str(grid)).runs
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 1
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 1  # still failed
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("1 cell(s) of grid 'resume' failed: ") and spec.fingerprint in last
    assert "--retry-failed" in last


# ------------------------------------------------------------------------------------ 8, 11
@pytest.fixture
def small_disk(tmp_path: Path):
    """A 32 MiB tmpfs (root only; skipped with the reason where mounting is not allowed,
    a failure under CI=true, where the disk-full tests must run)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)],
                              capture_output=True, text=True)
    except FileNotFoundError:
        fail_under_ci_else_skip("no `mount` command (the disk-full tests need a small tmpfs)")
    if proc.returncode != 0:
        fail_under_ci_else_skip(f"cannot mount a small tmpfs here (the disk-full tests need "
                                f"root): {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(directory: Path) -> None:
    """Fill the file system of ``directory`` to the last byte."""
    try:
        with open(directory / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass


def test_8_a_report_that_cannot_be_written_changes_nothing(bench_env, tmp_path, small_disk):

    assert run_main(["--grid", str(_grid(tmp_path, iterations=2)), "--quiet"]) == 0
    results = small_disk / "results"
    shutil.copytree(bench_env, results)
    out = small_disk / "BENCHMARKS.md"
    shutil.copyfile(bench_env.parent / "BENCHMARKS.md", out)
    before = {p: p.read_bytes() for p in [out, *results.rglob("*")] if p.is_file()}
    _fill(small_disk)
    proc = _cli("benchmark.report", "--results", str(results), "--out", str(out),
                "--bootstrap", "0")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0]
    assert str(small_disk) in lines[0] and "no report file was changed" in lines[0]
    after = {p: p.read_bytes() for p in [out, *results.rglob("*")] if p.is_file()}
    assert after == before  # BENCHMARKS.md and the leaderboard still agree: all or none


def test_11_a_full_disk_names_the_file(bench_env, tmp_path, small_disk, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_ARTIFACTS", str(small_disk / "artifacts"))
    (small_disk / "artifacts").mkdir()
    grid = _grid(tmp_path, iterations=4, checkpoint_every=2)
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 1
    (spec,) = load_grid(str(grid)).runs
    error = json.loads(Cell(spec.fingerprint).path(Cell.FAILED).read_text())["error"]
    assert error.startswith(str(small_disk / "artifacts")) and "No space left on device" in error
    assert not list((small_disk / "artifacts").rglob(".*.tmp"))  # no half-written file


# ---------------------------------------------------------------------------------------- 9
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_9_interrupt_checkpoints_says_one_line_and_resumes_bit_identical(
    bench_env, tmp_path, tiny_data_root, signum
):
    grid = _grid(tmp_path, iterations=24, checkpoint_every=4)
    (spec,) = load_grid(str(grid)).runs
    out = TrainingDir(spec.train_fingerprint)
    proc = _cli("benchmark.run", "--grid", str(grid), "--quiet", "--no-report")
    _wait_for(lambda: out.previous.is_file(), proc=proc)  # two checkpoints written
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.strip().splitlines() if not re.match(r"\[\d+/\d+\] ", ln)]
    assert len(lines) == 1 and "Traceback" not in err, err
    saved = torch.load(out.last, weights_only=False)["iteration"]
    assert f"interrupted at iteration {saved} of 24 (checkpoint saved)" in lines[0]
    assert lines[0].endswith("; finished work is kept: rerun the same command to resume")
    assert cell_states([spec.fingerprint])[0].state == "unsubmitted"
    # a damaged last checkpoint: the resume falls back to the one before it
    out.last.write_bytes(out.last.read_bytes()[:500])
    assert run_main(["--grid", str(grid), "--quiet", "--no-report"]) == 0
    resumed = _final_weights(spec)
    env = {**os.environ, "BENCH_RESULTS": str(tmp_path / "ref" / "results"),
           "BENCH_ARTIFACTS": str(tmp_path / "ref" / "artifacts")}
    ref = _cli("benchmark.run", "--grid", str(grid), "--quiet", "--no-report", env=env)
    assert ref.wait(timeout=300) == 0, ref.communicate()
    clean = torch.load(tmp_path / "ref" / "artifacts" / out.relative(out.final),
                       weights_only=False)["model"]
    assert _same_weights(resumed, clean)


# --------------------------------------------------------------------------------------- 10
def test_10_leftovers_are_removed_and_clean_removes_what_no_grid_needs(bench_env, tmp_path,
                                                                       capsys):
    from benchmark.clean import main as clean_main

    old = _grid(tmp_path, "old", iterations=2)
    new = _grid(tmp_path, "new", iterations=3)
    assert run_main(["--grid", str(old), "--quiet", "--no-report"]) == 0
    (spec,) = load_grid(str(new)).runs
    out = TrainingDir(spec.train_fingerprint)
    out.dir.mkdir(parents=True)
    stray = out.dir / ".last.pt.abc123.tmp"  # a write killed half-way
    stray.write_bytes(b"half")
    Cell("0123456789abcdef").write_spec("gone", {})  # a cell of a grid that changed
    assert run_main(["--grid", str(new), "--quiet", "--no-report"]) == 0
    assert not stray.exists()
    (old_spec,) = load_grid(str(old)).runs
    old_training = TrainingDir(old_spec.train_fingerprint).dir
    # the old run's record refers to its training: kept until the record goes
    assert clean_main(["--grid", str(new), "--dry-run"]) == 0
    listed = capsys.readouterr().out
    assert "0123456789abcdef" in listed and str(old_training) not in listed
    assert Cell("0123456789abcdef").dir.exists()  # a dry run removes nothing
    assert clean_main(["--grid", str(new), "--yes"]) == 0
    assert not Cell("0123456789abcdef").dir.exists()
    assert Cell(old_spec.fingerprint).path(Cell.RECORD).exists()  # records are never removed
    assert out.final.exists() and old_training.exists()


# --------------------------------------------------------------------------------------- 12
def test_12_a_negative_lr_is_rejected_naming_file_field_and_value(bench_env, tmp_path, capsys):
    grid = _grid(tmp_path)
    grid.write_text(grid.read_text().replace("{name: ft}", "{name: ft, lr: -0.5}"))
    assert run_main(["--grid", str(grid), "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {grid}: experiments[0].recipes[0]")
    assert "lr=-0.5: must be a number > 0" in line


def test_12_strict_prepare_decodes_every_image(tmp_path):
    from tests.test_sources_voc import add_image, obj, write_set  # hand-built VOC trees

    raw = tmp_path / "VOCdevkit"
    add_image(raw / "VOC2007", "000004", (50, 40), [obj("chair", (20, 4, 30, 24))])
    write_set(raw / "VOC2007", "test", ["000004"])
    victim = raw / "VOC2007" / "JPEGImages" / "000004.jpg"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])  # truncated JPEG
    args = ["benchmark.prepare", "voc", "--raw", str(raw), "--data-root", str(tmp_path / "d"),
            "--allow-partial", "--splits", "voc07_test"]
    lenient = subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                             text=True)
    assert lenient.returncode == 0, lenient.stderr  # its header is intact: accepted
    strict = subprocess.run([sys.executable, "-m", *args, "--strict"], cwd=REPO,
                            capture_output=True, text=True)
    assert strict.returncode == 2, strict.stdout + strict.stderr
    assert f"{victim}: does not decode" in strict.stderr
