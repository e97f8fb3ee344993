"""pytest fixtures and toy cells for the tests that need the local SLURM cluster.

Import the fixtures into ``tests/conftest.py``::

    from tests.slurm_fixtures import slurm_cluster, slurm_store  # noqa: F401

``slurm_cluster`` (session) provisions the cluster with ``tests/slurm_cluster.py`` where
it can (root + apt-get): otherwise the test is skipped with a loud reason, except under
``CI=true`` where it fails. It stops the daemons at the end only if this test run started
them and nobody else holds a lease (``BENCH_SLURM_KEEP=1`` keeps them up).

The toy cell (``ToySpec`` + ``toy_cell``) stands in for ``benchmark.pipeline.run_cell``: it
is pickled by value, so the compute node does not need to import this test module.

PYTEST_DONT_REWRITE (test modules import helpers from here before pytest loads it as a plugin)
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from tests.slurm_cluster import ClusterError, LocalSlurmCluster

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurmCluster]:
    cluster = LocalSlurmCluster()
    why = cluster.unavailable_reason()
    if why is not None:
        msg = f"SLURM TESTS NOT RUN: cannot provision the local SLURM cluster: {why}"
        if _ci():
            pytest.fail(f"{msg} (CI=true requires the SLURM tests to run)", pytrace=False)
        warnings.warn(msg, stacklevel=1)
        print(f"\n{'!' * 20} {msg} {'!' * 20}", file=sys.stderr)
        pytest.skip(msg)
    lease = cluster.acquire_lease()  # first: a session checking for users now sees this one
    was_up = cluster.is_up()
    try:
        cluster.start()
    except ClusterError as e:
        cluster.release_lease(lease)
        pytest.fail(f"the local SLURM cluster did not start: {e}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.release_lease(lease)
        if not was_up and os.environ.get("BENCH_SLURM_KEEP") != "1":
            try:
                cluster.stop()
            except ClusterError as e:  # another session still uses it: leave it up
                print(f"slurm cluster left running: {e}", file=sys.stderr)


@dataclass
class Store:
    results: Path
    artifacts: Path

    def cell(self, fp: str) -> Path:
        return self.results / "runs" / fp


@pytest.fixture
def slurm_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A private result store (BENCH_RESULTS / BENCH_ARTIFACTS) for one test."""
    store = Store(tmp_path / "results", tmp_path / "artifacts")
    store.results.mkdir()
    store.artifacts.mkdir()
    monkeypatch.setenv("BENCH_RESULTS", str(store.results))
    monkeypatch.setenv("BENCH_ARTIFACTS", str(store.artifacts))
    return store


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)
        time.sleep(every)


# --------------------------------------------------------------------------- toy cells
@dataclass(frozen=True)
class ToySpec:
    """The parts of a RunSpec the executor uses, plus what the toy cell should do."""

    name: str
    mode: str = "ok"  # ok | fail | wait | steps | sleep
    steps: int = 0
    step_s: float = 0.0
    parent: ToySpec | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def fingerprint(self) -> str:
        return f"toy-{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "parent": self.parent and self.parent.name}


def toy_parent(spec: ToySpec) -> ToySpec | None:
    """The toy cells' ``parent_of`` (RunSpecs resolve theirs through the recipe layer)."""
    return spec.parent


def _write_json(path: Path, obj: Any) -> None:
    from benchmark.store import atomic_write_json

    atomic_write_json(path, obj)


def toy_cell(spec: ToySpec) -> dict[str, Any]:
    """Stand-in for run_cell: idempotent, resumable, writes record.json last."""
    from benchmark.runtime import PreemptionGuard
    from benchmark.store import Cell, artifacts_root, results_root

    cell = results_root() / "runs" / spec.fingerprint
    art = artifacts_root() / spec.fingerprint
    if (cell / "record.json").exists():
        return json.loads((cell / "record.json").read_text())
    info: dict[str, Any] = {"fingerprint": spec.fingerprint, "job": os.environ.get("SLURM_JOB_ID")}
    if spec.parent is not None:
        parent_record = results_root() / "runs" / spec.parent.fingerprint / "record.json"
        info["parent_done_before_start"] = parent_record.exists()
    if spec.mode == "fail" and not (art / "fixed").exists():
        raise RuntimeError(f"toy failure in {spec.name}")
    if spec.mode == "wait":
        deadline = time.monotonic() + 120
        while not (art / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    if spec.mode == "sleep":
        time.sleep(300)
    if spec.mode == "steps":
        ckpt = art / "ckpt.json"
        state = json.loads(ckpt.read_text()) if ckpt.exists() else {"step": 0, "starts": []}
        state["starts"].append(state["step"])
        _write_json(ckpt, state)
        with PreemptionGuard(lambda: _write_json(art / "hook.json", dict(state))):
            while state["step"] < spec.steps:
                time.sleep(spec.step_s)
                state["step"] += 1
                _write_json(ckpt, state)  # periodic atomic checkpoint
        info["starts"] = state["starts"]
    info["finished"] = time.time()
    Cell(spec.fingerprint).write_record(info)  # as run_cell writes it: with its checksum
    return info
