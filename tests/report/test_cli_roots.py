"""``python -m benchmark.report`` writes only what the user named: a results directory that
does not exist or holds no runs is refused before anything is written, and the committed
leaderboard is the default output only for the committed results root."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.report import cli
from tests.report.test_frames import make_record, write_record


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in checkout: its committed results root and leaderboard (raising=False: the
    test must also run, and fail, against code without these names)."""
    root = tmp_path / "repo"
    (root / "results").mkdir(parents=True)
    (root / "BENCHMARKS.md").write_text("the committed leaderboard\n")
    monkeypatch.setattr(cli, "COMMITTED_RESULTS", root / "results", raising=False)
    monkeypatch.setattr(cli, "COMMITTED_MARKDOWN", root / "BENCHMARKS.md", raising=False)
    monkeypatch.setattr(cli, "REPO_ROOT", root, raising=False)
    monkeypatch.setenv("BENCH_REPORT_SERIAL", "1")
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_results_typo_is_refused_and_writes_nothing(repo: Path, capsys) -> None:
    before = _tree(repo.parent)
    rc = cli.main(["--results", str(repo / "reslts"), "--bootstrap", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and "reslts" in err[0] and "does not exist" in err[0]
    assert not (repo / "reslts").exists()
    assert _tree(repo.parent) == before  # the committed leaderboard is untouched


@pytest.mark.parametrize("check", [False, True])
def test_a_results_directory_without_runs_is_refused(repo: Path, tmp_path: Path, capsys,
                                                     check: bool) -> None:
    empty = tmp_path / "empty"
    (empty / "runs").mkdir(parents=True)
    before = _tree(tmp_path)
    rc = cli.main(["--results", str(empty), "--bootstrap", "0", *(["--check"] * check)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "holds no runs" in err[0]
    assert _tree(tmp_path) == before


def test_another_root_in_the_checkout_never_renders_the_committed_leaderboard(
        repo: Path, capsys) -> None:
    mine = repo / "mine"  # its parent is the checkout: "next to it" is the committed file
    write_record(mine, make_record())
    assert cli.main(["--results", str(mine), "--bootstrap", "0"]) == 0
    assert (repo / "BENCHMARKS.md").read_text() == "the committed leaderboard\n"
    md = (mine / "BENCHMARKS.md").read_text()
    assert md.startswith("# Benchmarks") and "](plots/" in md  # plots linked from there
    assert cli.main(["--results", str(mine), "--bootstrap", "0", "--check"]) == 0


def test_outputs_go_where_the_user_says(repo: Path, tmp_path: Path) -> None:
    demo = tmp_path / "runs" / "demo" / "results"  # scripts/dev.sh demo's layout
    write_record(demo, make_record())
    assert cli.main(["--results", str(demo), "--bootstrap", "0"]) == 0
    assert (demo.parent / "BENCHMARKS.md").is_file()  # next to its results, as the demo says
    out = tmp_path / "elsewhere" / "B.md"
    assert cli.main(["--results", str(demo), "--out", str(out), "--bootstrap", "0"]) == 0
    assert out.read_text().startswith("# Benchmarks")
    assert (repo / "BENCHMARKS.md").read_text() == "the committed leaderboard\n"


def test_only_the_committed_root_defaults_to_the_committed_leaderboard(repo: Path) -> None:
    assert cli.default_out(repo / "results") == repo / "BENCHMARKS.md"
    assert cli.default_out(repo / "mine") == (repo / "mine" / "BENCHMARKS.md").resolve()
    other = repo.parent / "runs" / "demo" / "results"
    assert cli.default_out(other) == (other.parent / "BENCHMARKS.md").resolve()
