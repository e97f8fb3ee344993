"""benchmark.status: cell states from the result store + one scheduler answer.

The scheduler side here is real ``sacct`` / ``squeue`` output text fed through the same
parser the CLI uses; the end-to-end path against the live cluster is in
tests/test_slurm_executor.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from benchmark import status
from benchmark.status import SchedulerView, cell_states, parse_sacct, parse_squeue
from benchmark.store import Cell

NOW = 1_800_000_000.0

SACCT = """\
100_0|COMPLETED|0:0|None
100_1|OUT_OF_MEMORY|0:125|None
100_2|NODE_FAIL|0:0|None
100_3|TIMEOUT|0:0|None
100_4|CANCELLED by 0|0:15|None
100_[5-7%2]|PENDING|0:0|JobArrayTaskLimit
101|RUNNING|0:0|None
101.batch|RUNNING|0:0|
102_0|REQUEUED|0:0|None
103|FAILED|1:0|None
104|COMPLETED|0:0|None
"""


def _cell(root: Path, fp: str, **files: dict) -> Path:
    """A cell directory with the given files; a record is written as the pipeline writes it
    (with its fingerprint and checksum), the rest as plain JSON."""
    d = root / "runs" / fp
    d.mkdir(parents=True, exist_ok=True)
    for name, obj in files.items():
        if name == "record":
            Cell(fp, root).write_record({**obj, "fingerprint": fp})
        else:
            (d / f"{name}.json").write_text(json.dumps(obj))
    return d


def _sub(job_id: str, log: str | None = None, ts: float = NOW - 5) -> dict:
    return {"executor": "slurm", "job_id": job_id, "submitted_ts": ts, "log": log}


class Counting:
    """A scheduler answer built from sacct text, counting how often it is asked."""

    def __init__(self, text: str = SACCT, source: str = "sacct", complete: bool = False):
        self.text, self.source, self.complete = text, source, complete
        self.calls: list[list[str]] = []

    def __call__(self, job_ids: Iterable[str]) -> SchedulerView:
        self.calls.append(list(job_ids))
        parse = parse_squeue if self.source == "squeue" else parse_sacct
        return SchedulerView(jobs=parse(self.text), source=self.source, complete=self.complete)


def test_parse_sacct_expands_arrays_and_skips_steps() -> None:
    jobs = parse_sacct(SACCT)
    assert jobs["100_1"].state == "OUT_OF_MEMORY"
    assert jobs["100_4"].state == "CANCELLED"  # "CANCELLED by 0"
    assert {jobs[f"100_{i}"].state for i in (5, 6, 7)} == {"PENDING"}
    assert jobs["100_6"].reason == "JobArrayTaskLimit"
    assert "101.batch" not in jobs and jobs["101"].state == "RUNNING"
    assert "100_8" not in jobs


def test_parse_squeue() -> None:
    jobs = parse_squeue("200_1|RUNNING|None\n200_[2-3]|PENDING|Resources\n")
    assert jobs["200_1"].state == "RUNNING" and jobs["200_1"].reason == ""
    assert jobs["200_3"].reason == "Resources"


def test_scheduler_kills_map_to_failed_with_reason(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)) + "slurmstepd: oom-kill event\n")
    for i in range(5):
        _cell(tmp_path, f"c{i}", submitted=_sub(f"100_{i}", str(log)))
    query = Counting()
    got = {s.fingerprint: s for s in cell_states(results=tmp_path, query=query, now=NOW, tail=3)}
    assert len(query.calls) == 1
    assert got["c0"].state == "failed" and "without writing record.json" in got["c0"].detail
    assert got["c1"].state == "failed" and got["c1"].detail.startswith("OUT_OF_MEMORY")
    assert "out of memory" in got["c1"].detail and "0:125" in got["c1"].detail
    assert got["c1"].job_id == "100_1"
    assert got["c1"].log_tail == ["line 48", "line 49", "slurmstepd: oom-kill event"]
    assert got["c2"].detail.startswith("NODE_FAIL") and "node failure" in got["c2"].detail
    assert got["c3"].detail.startswith("TIMEOUT")
    assert got["c4"].detail.startswith("CANCELLED")
    assert all(s.state == "failed" for s in got.values())


def test_active_jobs_are_pending_or_running(tmp_path: Path) -> None:
    _cell(tmp_path, "p", submitted=_sub("100_6"))
    _cell(tmp_path, "r", submitted=_sub("101"))
    _cell(tmp_path, "q", submitted=_sub("102_0"))  # requeued after preemption
    got = {s.fingerprint: s for s in cell_states(results=tmp_path, query=Counting(), now=NOW)}
    assert (got["p"].state, got["p"].detail) == ("pending", "JobArrayTaskLimit")
    assert got["r"].state == "running"
    assert got["q"].state == "pending" and got["q"].scheduler_state == "REQUEUED"


def test_result_files_win_over_the_scheduler(tmp_path: Path) -> None:
    _cell(tmp_path, "done", submitted=_sub("103"), record={"fingerprint": "done"})
    _cell(
        tmp_path,
        "raised",
        submitted=_sub("103"),
        failed={"error": "ValueError: bad lr", "traceback_tail": ["a", "b"], "log": None},
    )
    _cell(tmp_path, "local", failed={"error": "KeyError: x", "traceback_tail": "t1\nt2"})
    got = {s.fingerprint: s for s in cell_states(results=tmp_path, query=Counting(), now=NOW)}
    assert got["done"].state == "done"
    assert got["raised"].state == "failed" and got["raised"].detail == "ValueError: bad lr"
    assert got["raised"].job_id == "103" and got["raised"].log_tail == ["a", "b"]
    assert got["local"].state == "failed" and got["local"].log_tail == ["t1", "t2"]


def test_result_written_after_the_store_was_read(tmp_path: Path) -> None:
    """sacct says COMPLETED for a job whose record.json appeared after the store scan."""
    _cell(tmp_path, "late", submitted=_sub("104"))

    def query(ids: Iterable[str]) -> SchedulerView:
        Cell("late", tmp_path).write_record({"fingerprint": "late"})
        return SchedulerView(jobs=parse_sacct(SACCT))

    (got,) = cell_states(results=tmp_path, query=query, now=NOW)
    assert got.state == "done"


def test_job_unknown_to_the_scheduler_is_bounded(tmp_path: Path) -> None:
    _cell(tmp_path, "young", submitted=_sub("999_0", ts=NOW - 10))
    _cell(tmp_path, "old", submitted=_sub("999_1", ts=NOW - status.ACCOUNTING_GRACE_S - 1))
    got = {s.fingerprint: s for s in cell_states(results=tmp_path, query=Counting(), now=NOW)}
    assert got["young"].state == "pending" and "not yet in accounting" in got["young"].detail
    assert got["old"].state == "failed" and "unknown to sacct" in got["old"].detail
    # squeue (accounting disabled): a job it does not list has left the queue
    sq = Counting("101|RUNNING|None\n", source="squeue", complete=True)
    got = {s.fingerprint: s for s in cell_states(results=tmp_path, query=sq, now=NOW)}
    assert got["young"].state == "failed" and "unknown to squeue" in got["young"].detail


def test_no_scheduler_answer_never_claims_failure(tmp_path: Path) -> None:
    _cell(tmp_path, "x", submitted=_sub("5_0", ts=NOW - 10_000))

    def down(ids: Iterable[str]) -> SchedulerView:
        return SchedulerView(source="none", error="sacct failed: connection refused")

    (got,) = cell_states(results=tmp_path, query=down, now=NOW)
    assert got.state == "pending" and "connection refused" in got.detail


def test_no_query_when_nothing_is_in_flight(tmp_path: Path) -> None:
    _cell(tmp_path, "a", record={})
    _cell(tmp_path, "b", spec={"x": 1})
    query = Counting()
    got = cell_states(["a", "b", "never-planned"], results=tmp_path, query=query)
    assert [s.state for s in got] == ["done", "unsubmitted", "unsubmitted"]
    assert query.calls == []
    assert status.query_scheduler([]).calls == 0


def test_cli_json_and_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path))
    _cell(tmp_path, "a" * 16, record={})
    _cell(tmp_path, "b" * 16, failed={"error": "RuntimeError: boom", "traceback_tail": ["x"]})
    assert status.main(["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {(c["fingerprint"], c["state"]) for c in out} == {
        ("a" * 16, "done"),
        ("b" * 16, "failed"),
    }
    assert status.main(["--state", "failed"]) == 0
    text = capsys.readouterr().out
    assert "RuntimeError: boom" in text and "a" * 14 not in text and "| x" in text


def test_status_over_10000_cells_is_fast_with_one_query(tmp_path: Path) -> None:
    n = 10_000
    lines = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            _cell(tmp_path, f"cell{i:05d}", record={"i": i})
        elif kind == 1:
            _cell(
                tmp_path,
                f"cell{i:05d}",
                submitted=_sub(f"{500 + i // 1000}_{i % 1000}"),
                failed={"error": "boom", "traceback_tail": ["t"]},
            )
        else:
            _cell(tmp_path, f"cell{i:05d}", submitted=_sub(f"{500 + i // 1000}_{i % 1000}"))
            state = "RUNNING" if kind == 2 else "OUT_OF_MEMORY"
            lines.append(f"{500 + i // 1000}_{i % 1000}|{state}|0:0|None")
    query = Counting("\n".join(lines))
    t0 = time.perf_counter()
    got = cell_states(results=tmp_path, query=query, now=NOW)
    elapsed = time.perf_counter() - t0
    assert len(got) == n and len(query.calls) == 1
    counts = {s: sum(c.state == s for c in got) for s in ("done", "failed", "running")}
    assert counts == {"done": 2500, "failed": 5000, "running": 2500}
    assert elapsed < 5.0, f"status over {n} cells took {elapsed:.2f} s"


def test_status_of_a_grid_names_every_cell(bench_env, capsys) -> None:
    from benchmark.status import main
    from tests.conftest import TINY_GRID

    assert main(["--grid", str(TINY_GRID)]) == 0
    out = capsys.readouterr().out
    assert "6 cells: unsubmitted 6" in out
    for recipe in ("ft", "dp", "dp_ft"):
        assert f"demo resnet18[none] {recipe} seed 0" in out


def test_status_without_grid_labels_cells_from_their_specs_grouped_by_grid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from benchmark.grid import load_grid
    from tests.conftest import TINY_GRID

    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path))
    ft, dp = load_grid(str(TINY_GRID), resolve_data=False, check_weights=False,
                       only="backbone=resnet18,recipe=ft|dp").runs
    _cell(tmp_path, ft.fingerprint, spec={"grid": "tiny", "spec": ft.to_json()})
    _cell(tmp_path, dp.fingerprint, spec={"grid": "other", "spec": dp.to_json()},
          record={})
    _cell(tmp_path, "c" * 16)  # a directory without a spec
    assert status.main([]) == 0
    out = capsys.readouterr().out
    blocks = out.strip().split("\n\n")
    assert [b.splitlines()[0].split(":")[0] for b in blocks] == [
        "grid other", "grid tiny", "grid (no spec.json)"]
    assert "demo resnet18[none] dp seed 0" in blocks[0] and "done" in blocks[0]
    assert "demo resnet18[none] ft seed 0" in blocks[1] and "unsubmitted" in blocks[1]
    assert "c" * 14 in blocks[2]
