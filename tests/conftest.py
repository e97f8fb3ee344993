"""Shared fixtures. Tests never write into the repository's results/, artifacts/ or data:
every test gets its own BENCH_RESULTS / BENCH_ARTIFACTS, and reads a tiny demo dataset
built once per session."""

from __future__ import annotations

from pathlib import Path

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
