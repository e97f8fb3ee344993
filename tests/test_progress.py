"""The local executor's progress lines: one plain line per started / finished cell, with the
grid's progress and an ETA, the same whether stderr is a terminal or a log file."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from benchmark.executors import LocalExecutor, Progress, duration
from tests.conftest import TINY_GRID


@pytest.fixture
def cells() -> list:
    from benchmark.grid import load_grid

    return load_grid(TINY_GRID, resolve_data=False).cells()


def test_duration_reads_like_a_person_would_say_it() -> None:
    assert duration(0.4) == "0 s"
    assert duration(81) == "81 s"
    assert duration(240) == "4 min"
    assert duration(3900) == "65 min"
    assert duration(5700) == "1 h 35 min"


def test_lines_count_the_grid_and_estimate_the_rest(cells: list) -> None:
    out = io.StringIO()
    p = Progress(total=6, done=2, workers=2, todo=4, file=out)
    a, b, c = cells[:3]
    p.start(a)
    p.start(b)
    p.finish(a)
    p.start(c)
    p.finish(b, "DataError: boom")
    p.finish(c)
    lines = out.getvalue().splitlines()
    name = lambda s: f"{s.backbone.name} × {s.recipe.name}"  # noqa: E731
    assert lines[0] == f"[2/6] start {name(a)}"
    assert lines[1] == f"[2/6] start {name(b)}"
    # 3 of this run's 4 cells left, 2 workers: an ETA from the one finished cell
    assert re.fullmatch(rf"\[3/6\] done {re.escape(name(a))} \(\d+ s\) — ETA \d+ s", lines[2])
    assert lines[3] == f"[3/6] start {name(c)}"
    assert re.fullmatch(rf"\[4/6\] FAILED {re.escape(name(b))} \(\d+ s\) — ETA \d+ s: "
                        r"DataError: boom", lines[4])
    assert re.fullmatch(rf"\[5/6\] done {re.escape(name(c))} \(\d+ s\) — ETA \d+ s", lines[5])
    assert all("\r" not in ln and "\x1b" not in ln for ln in lines)  # the same in a log file


def test_the_last_cell_has_no_eta_and_seeds_are_named_when_several(cells: list) -> None:
    out = io.StringIO()
    p = Progress(total=1, todo=1, file=out, seeds=True)
    p.start(cells[0])
    p.finish(cells[0])
    last = out.getvalue().splitlines()[-1]
    assert re.fullmatch(r"\[1/1\] done \S+ × \S+ seed 0 \(\d+ s\)", last), last


def test_the_executor_prints_a_line_per_cell_even_when_cells_fail(
        cells: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Cells whose data is missing fail at once: each still gets its start and end line."""
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BENCH_ARTIFACTS", str(tmp_path / "artifacts"))
    outcome = LocalExecutor(workers=1, progress=False, total=8, finished=6).execute(
        cells[:2], "tiny")
    assert len(outcome.failed) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[")]
    assert [ln.split()[:2] for ln in lines] == [["[6/8]", "start"], ["[7/8]", "FAILED"],
                                                 ["[7/8]", "start"], ["[8/8]", "FAILED"]]
