"""The committed BENCHMARKS.md is what the committed run records render (CI runs this)."""

from benchmark.report import main as report_main
from benchmark.store import REPO_ROOT


def test_committed_benchmarks_md_is_fresh(monkeypatch, capsys):
    monkeypatch.delenv("BENCH_RESULTS", raising=False)
    assert (REPO_ROOT / "results" / "runs").is_dir(), "the demo's run records are committed"
    rc = report_main(["--check", "--results", str(REPO_ROOT / "results"),
                      "--out", str(REPO_ROOT / "BENCHMARKS.md")])
    assert rc == 0, capsys.readouterr()
