"""Shared fixtures. Tests never write into the repository's results/, artifacts/ or data:
every test gets its own BENCH_RESULTS / BENCH_ARTIFACTS, and reads a tiny demo dataset
built once per session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).parent
TINY_GRID = TESTS / "grids" / "tiny.yaml"
TINY_CORRUPTIONS = ("gaussian_noise", "fog")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    """Say, in the last lines of the output, which tests were NOT RUN and why, grouped: CI's
    log then shows that the detectron2 tests (and any other skipped group) did not run,
    instead of a pass that hides them among the dots."""
    groups: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = _skip_reason(report)
        if "detectron2" in reason:
            reason = "detectron2 not importable"
        elif reason.startswith("slow:") and "rehearsal" in report.keywords:
            reason = ("rehearsal: the smoke of every published grid, hours on 2 cores "
                      "(pytest --runslow -m rehearsal; not run by `bash scripts/dev.sh test`)")
        elif reason.startswith("slow:"):
            reason = "slow (run with --runslow; `bash scripts/dev.sh test` runs them next)"
        groups[reason] = groups.get(reason, 0) + 1
    if not groups:
        return
    terminalreporter.section("tests NOT RUN")
    for reason, n in sorted(groups.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"NOT RUN: {reason} ({n} test{'s' if n != 1 else ''})")


def fail_under_ci_else_skip(why: str) -> None:
    """A test that needs a privilege or a tool this machine lacks: skipped with the reason,
    except under CI=true, where it must run, so the skip is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: this test must run here, but {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo generator at its smallest: 8 train / 4 test scenes, 2 corruptions."""
    from benchmark.data.corrupt import build_corrupted_splits
    from benchmark.data.demo import build_demo

    root = tmp_path_factory.mktemp("data")
    splits = build_demo(root, seed=0, n_train=8, n_test=4, progress=False)
    test = next(s for s in splits if s.name == "demo_test")
    build_corrupted_splits(test, TINY_CORRUPTIONS, [3], root=root, progress=False)
    return root


@pytest.fixture(scope="session")
def demo_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo grid's own dataset, full size (400 train / 100 test scenes; the corrupted
    copies are made on the fly where a test needs them)."""
    from benchmark.data.demo import build_demo

    root = tmp_path_factory.mktemp("demo_data")
    build_demo(root, seed=0, progress=False)
    return root


@pytest.fixture
def bench_env(tmp_path: Path, tiny_data_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated results/artifacts roots over the tiny dataset; returns the results root."""
    monkeypatch.setenv("BENCH_DATA", str(tiny_data_root))
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BENCH_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path / "results"
