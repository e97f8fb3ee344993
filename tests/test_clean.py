"""``python -m benchmark.clean``: it lists, then asks (or takes ``--yes``), refuses without a
terminal, and never removes a training that a record, a running or queued cell, or a
resumable checkpoint of any grid under the results root still needs."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.clean import main as clean_main
from benchmark.grid import load_grid
from benchmark.store import Cell, TrainingDir
from tests.conftest import TINY_GRID


def _grid(tmp_path: Path, name: str, recipes: str) -> Path:
    """The tiny grid with one backbone (from scratch: no weights file) and ``recipes``."""
    text = TINY_GRID.read_text().replace("name: tiny", f"name: {name}")
    text = text.replace("      - {name: efficientnet_lite0, weights: imagenet}\n", "")
    old = text[text.index("    recipes:"):text.index("    seeds:")]
    text = text.replace(old, f"    recipes: {recipes}\n")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _training(spec, *files: str) -> TrainingDir:
    t = TrainingDir(spec.train_fingerprint)
    t.dir.mkdir(parents=True, exist_ok=True)
    for name in files:
        (t.dir / name).write_bytes(b"weights")
    return t


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def store(bench_env: Path, tmp_path: Path) -> dict:
    """A results/artifacts root shared by two grids: ``keep`` (the one clean is told about)
    and ``other``, whose cells are running, queued and interrupted; plus leftovers."""
    keep = _grid(tmp_path, "keep", "[{name: ft}]")
    other = _grid(tmp_path, "other", "[{name: dp, lr: 0.02}, {name: ft, lr: 0.005}, "
                                     "{name: ft, lr: 0.003}]")
    (kept,) = load_grid(str(keep)).cells()
    running, queued, interrupted = load_grid(str(other)).cells()
    _training(kept, "model_final.pt")
    for spec in (running, queued, interrupted):
        Cell(spec.fingerprint).write_spec("other", spec.to_json())
    Cell(running.fingerprint).write_running()  # this process: alive, on this host
    run_t = _training(running, "last.pt")
    Cell(queued.fingerprint).write_submitted({"executor": "slurm", "job_id": "4242",
                                              "submitted_ts": 0})
    queued_t = _training(queued, "model_final.pt")
    (queued_t.dir / "eval" / queued.eval_fingerprint).mkdir(parents=True)
    Cell(interrupted.fingerprint).path(Cell.RUNNING).write_text(
        f'{{"pid": {_dead_pid()}, "host": "{socket.gethostname()}"}}')
    int_t = _training(interrupted, "previous.pt")  # preempted mid-run: resumes from it
    orphan_resumable = TrainingDir("a" * 16)
    orphan_resumable.dir.mkdir(parents=True)
    orphan_resumable.last.write_bytes(b"partial")
    orphan_done = TrainingDir("b" * 16)
    orphan_done.dir.mkdir(parents=True)
    orphan_done.final.write_bytes(b"final")
    abandoned = Cell("0123456789abcdef")
    abandoned.write_spec("gone", {})
    return {"keep": keep, "kept": TrainingDir(kept.train_fingerprint).dir,
            "needed": [run_t.dir, queued_t.dir / "eval" / queued.eval_fingerprint,
                       int_t.dir, orphan_resumable.dir,
                       *(Cell(s.fingerprint).dir for s in (running, queued, interrupted))],
            "removable": [orphan_done.dir, abandoned.dir]}


def test_clean_never_removes_what_another_grid_still_needs(store: dict, monkeypatch,
                                                           capsys) -> None:
    assert clean_main(["--grid", str(store["keep"]), "--yes"]) == 0
    out = capsys.readouterr().out
    for path in store["removable"]:
        assert not path.exists() and f"removed {path}" in out
    for path in [store["kept"], *store["needed"]]:
        assert path.exists(), path
        assert str(path) not in out


def test_clean_lists_first_and_refuses_without_a_terminal(store: dict, monkeypatch,
                                                          capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped: nobody to ask
    assert clean_main(["--grid", str(store["keep"])]) == 2
    out, err = capsys.readouterr()
    assert all(f"would remove {p}" in out for p in store["removable"])
    (line,) = err.strip().splitlines()
    assert "--yes" in line and "not a terminal" in line
    assert all(p.exists() for p in store["removable"])


@pytest.mark.parametrize(("answer", "rc"), [("n\n", 1), ("\n", 1), ("y\n", 0)])
def test_clean_asks_on_a_terminal(store: dict, monkeypatch, capsys, answer: str,
                                  rc: int) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal(answer))
    assert clean_main(["--grid", str(store["keep"])]) == rc
    out = capsys.readouterr().out
    listed = out.index(f"would remove {store['removable'][0]}")
    assert listed < out.index("[y/N]")  # listed, then asked
    assert all(p.exists() != (rc == 0) for p in store["removable"])
    assert all(p.exists() for p in store["needed"])


def test_dry_run_lists_and_removes_nothing(store: dict, capsys) -> None:
    assert clean_main(["--grid", str(store["keep"]), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(f"would remove {p}" in out for p in store["removable"])
    assert "nothing removed" in out and all(p.exists() for p in store["removable"])
    assert os.listdir(store["kept"])
