"""One rule for where a command writes: --root DIR; else $BENCH_RESULTS; else the committed
results/ for the committed demo grid as it is, runs/<grid>/ for every other grid."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmark.store.files import COMMITTED_GRID, RUNS_ROOT, rooted, work_root
from tests.conftest import TINY_GRID


@pytest.fixture
def no_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("BENCH_RESULTS", "BENCH_ARTIFACTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "weights"))
    return tmp_path


def test_the_rule(no_roots: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert work_root(None, COMMITTED_GRID) is None  # results/: the committed records
    assert work_root(None, COMMITTED_GRID, variant=True) == RUNS_ROOT / "demo"  # --set
    assert work_root(None, TINY_GRID) == RUNS_ROOT / "tiny"
    assert work_root(no_roots / "r", TINY_GRID) == no_roots / "r"
    assert work_root(None, None) is None
    monkeypatch.setenv("BENCH_RESULTS", str(no_roots / "env"))
    assert work_root(None, TINY_GRID) is None  # the environment decides


def test_rooted_sets_both_roots_for_children_and_restores_them(no_roots: Path) -> None:
    with rooted(no_roots / "w"):
        assert os.environ["BENCH_RESULTS"] == str(no_roots / "w" / "results")
        assert os.environ["BENCH_ARTIFACTS"] == str(no_roots / "w" / "artifacts")
    assert "BENCH_RESULTS" not in os.environ and "BENCH_ARTIFACTS" not in os.environ


def test_a_user_grid_says_on_its_first_line_where_it_writes(no_roots: Path, capsys) -> None:
    from benchmark.run import main

    grid = no_roots / "mine.yaml"
    grid.write_text(TINY_GRID.read_text())
    main(["--grid", str(grid), "--dry-run"])
    first = capsys.readouterr().out.splitlines()[0]
    assert str(RUNS_ROOT / "mine") in first
    assert "BENCH_RESULTS" not in os.environ  # nothing leaks out of the command
    main(["--grid", str(grid), "--dry-run", "--root", str(no_roots / "w")])
    assert str(no_roots / "w") in capsys.readouterr().out.splitlines()[0]


def _cell(results: Path, fp: str, grid: str, spec: dict) -> None:
    d = results / "runs" / fp
    d.mkdir(parents=True)
    (d / "spec.json").write_text(json.dumps({"grid": grid, "spec": spec}))


def test_status_and_clean_take_root(no_roots: Path, capsys) -> None:
    from benchmark.clean import main as clean_main
    from benchmark.grid import load_grid
    from benchmark.status import main as status_main

    spec = load_grid(str(TINY_GRID), resolve_data=False, check_weights=False).runs[0]
    root = no_roots / "w"
    _cell(root / "results", "f" * 16, "tiny", spec.to_json())
    assert status_main(["--root", str(root), "--json"]) == 0
    assert [c["fingerprint"] for c in json.loads(capsys.readouterr().out)] == ["f" * 16]
    # clean keeps what the grid's cells need; the root is the one named (data missing: refused
    # with the split named, before anything is listed)
    assert clean_main(["--grid", str(TINY_GRID), "--root", str(root), "--dry-run"]) == 2
    assert "demo_train" in capsys.readouterr().err
    assert (root / "results" / "runs" / ("f" * 16)).is_dir()


def test_status_of_a_user_grid_reads_its_default_root(
        no_roots: Path, tiny_data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmark.status as status
    import benchmark.store.files as files

    monkeypatch.setenv("BENCH_DATA", str(tiny_data_root))
    monkeypatch.setattr(files, "RUNS_ROOT", no_roots / "runs")
    grid = no_roots / "mine.yaml"
    grid.write_text(TINY_GRID.read_text())
    seen = {}
    real = status.cell_states

    def spy(fps=None, **kw):
        seen["results"] = os.environ.get("BENCH_RESULTS")
        return real(fps, **kw)

    monkeypatch.setattr(status, "cell_states", spy)
    assert status.main(["--grid", str(grid)]) == 0
    assert seen["results"] == str(no_roots / "runs" / "mine" / "results")
