"""SlurmExecutor against the real local cluster: arrays, splitting, dependencies, failure
isolation and retry, preemption with requeue + resume, scheduler kills, racing submits.

Cells are toy stand-ins for run_cell (tests/slurm_fixtures.py); every wait is bounded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmark.errors import ConfigError
from benchmark.profiles import load_profile
from benchmark.slurm import SlurmExecutor, plan_arrays
from benchmark.status import cell_states
from tests.slurm_fixtures import ToySpec, toy_cell, toy_parent, wait_for

pytest_plugins = ["tests.slurm_fixtures"]  # slurm_cluster, slurm_store

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


# ----------------------------------------------------------------- planning (no cluster)
def test_plan_arrays_splits_each_stage_by_the_array_limit() -> None:
    specs = [ToySpec(f"c{i}") for i in range(1000)]
    assert [len(a) for st in plan_arrays(specs, 1001, toy_parent) for a in st] == [1000]
    stages = plan_arrays(specs, 300, toy_parent)
    assert len(stages) == 1 and [len(a) for a in stages[0]] == [300, 300, 300, 100]
    parents = specs[:10]
    children = [ToySpec(f"ft{i}", parent=parents[i % 10]) for i in range(25)]
    grand = [ToySpec("g", parent=children[0])]
    stages = plan_arrays([*grand, *children, *specs], 7, toy_parent)
    assert [sum(map(len, st)) for st in stages] == [1000, 25, 1]
    assert [len(st) for st in stages] == [math.ceil(1000 / 7), math.ceil(25 / 7), 1]
    # a parent that is not submitted now (done / queued) puts no child in a later stage
    assert [sum(map(len, st)) for st in plan_arrays(children, 7, toy_parent)] == [25]


def test_plan_arrays_rejects_parent_loops() -> None:
    a = ToySpec("a")
    b = ToySpec("b", parent=a)
    loop = dataclasses.replace(a, parent=b)  # fingerprint toy-a, parent toy-b → toy-a
    with pytest.raises(ConfigError, match="loops"):
        plan_arrays([loop, b], 5, toy_parent)


# ------------------------------------------------------------------------ live cluster
@pytest.fixture
def make_executor(slurm_cluster, slurm_store) -> Iterator:
    made: list[SlurmExecutor] = []

    def make(**profile_changes) -> SlurmExecutor:
        prof = dataclasses.replace(load_profile("local"), **profile_changes)
        ex = SlurmExecutor(prof, grid="test", task=toy_cell, parent_of=toy_parent)
        made.append(ex)
        return ex

    yield make
    ids = [j.job_id.split("_")[0] for ex in made for j in ex.jobs.values()]
    if ids:  # leave nothing running for the next test
        subprocess.run(["scancel", *sorted(set(ids))], capture_output=True, timeout=30)


def states() -> dict[str, object]:
    return {s.fingerprint: s for s in cell_states()}


def all_settled(fps: list[str]) -> dict | None:
    st = states()
    return st if all(st[f].state in ("done", "failed") for f in fps) else None


def submitted(store, fp: str) -> dict:
    return json.loads((store.cell(fp) / "submitted.json").read_text())


@pytest.mark.slurm
def test_arrays_split_by_max_array_size_and_staged_after_parents(
    make_executor,
    slurm_store,
) -> None:
    ex = make_executor()
    assert ex.array_limit == 5  # the test cluster's MaxArraySize
    roots = [ToySpec(f"r{i}") for i in range(7)]
    child = ToySpec("child", parent=roots[6])
    specs = [child, *roots]
    ids = ex.submit(specs)
    assert len(ids) == 8 and ex.sbatch_calls == 3  # ceil(7/5) arrays + 1 for the child stage
    arrays = [submitted(slurm_store, s.fingerprint)["array_job_id"] for s in roots]
    assert len(set(arrays[:5])) == 1 and len(set(arrays[5:])) == 1 and arrays[0] != arrays[5]
    assert [submitted(slurm_store, s.fingerprint)["array_task"] for s in roots] == [
        0,
        1,
        2,
        3,
        4,
        0,
        1,
    ]
    script = (
        Path(submitted(slurm_store, child.fingerprint)["log"]).parent
        / f"{ids[-1].split('_')[0]}_submission.sh"
    ).read_text()
    assert f"--dependency=afterany:{arrays[5]}" in script
    st = wait_for("8 cells done", lambda: all_settled([s.fingerprint for s in specs]), 90)
    assert {s.state for s in st.values()} == {"done"}
    record = json.loads((slurm_store.cell(child.fingerprint) / "record.json").read_text())
    assert record["parent_done_before_start"] is True
    # submitting again: everything is done, nothing goes out
    assert ex.submit(specs) == [] and ex.sbatch_calls == 3
    assert set(ex.last_plan.skipped.values()) == {"done"}


@pytest.mark.slurm
def test_failing_cell_is_isolated_reported_and_retried_alone(
    make_executor,
    slurm_store,
) -> None:
    ex = make_executor()
    specs = [ToySpec("ok1"), ToySpec("bad", mode="fail"), ToySpec("ok2")]
    first = ex.submit(specs)
    st = wait_for("cells settled", lambda: all_settled([s.fingerprint for s in specs]), 60)
    assert st["toy-ok1"].state == st["toy-ok2"].state == "done"
    bad = st["toy-bad"]
    assert bad.state == "failed" and bad.job_id == first[1]
    assert bad.detail == "RuntimeError: toy failure in bad"
    assert any("toy failure in bad" in line for line in bad.log_tail), bad.log_tail
    # plain re-run: the failed cell is not resubmitted, nor anything else
    assert ex.submit(specs) == []
    assert ex.last_plan.skipped == {"toy-ok1": "done", "toy-bad": "failed", "toy-ok2": "done"}
    # --retry-failed: only the failed cell goes out again
    (slurm_store.artifacts / "toy-bad").mkdir(parents=True)
    (slurm_store.artifacts / "toy-bad" / "fixed").touch()
    again = ex.submit(specs, retry_failed=True)
    assert len(again) == 1 and again[0] != first[1]
    sub = submitted(slurm_store, "toy-bad")
    assert sub["attempt"] == 2 and sub["history"][0]["job_id"] == first[1]
    assert (slurm_store.cell("toy-bad") / "failed.previous.json").exists()
    st = wait_for("retried cell done", lambda: all_settled(["toy-bad"]), 60)
    assert st["toy-bad"].state == "done"


@pytest.mark.slurm
def test_status_follows_pending_running_done_without_duplicates(
    make_executor,
    slurm_store,
) -> None:
    ex = make_executor(array_parallelism=1)
    specs = [ToySpec(f"w{i}", mode="wait") for i in range(3)]
    ids = ex.submit(specs)
    assert len({i.split("_")[0] for i in ids}) == 1

    def one_running_two_pending() -> dict | None:
        st = states()
        got = sorted(st[s.fingerprint].state for s in specs)
        return st if got == ["pending", "pending", "running"] else None

    st = wait_for("1 running + 2 pending", one_running_two_pending, 60)
    waiting = [st[s.fingerprint] for s in specs if st[s.fingerprint].state == "pending"]
    # the scheduler's reason (JobArrayTaskLimit once it has looked at the tasks), its state,
    # or "not yet in accounting" right after submission
    assert all(c.scheduler_state in ("PENDING", None) and c.detail for c in waiting), waiting
    assert ex.submit(specs) == [] and set(ex.last_plan.skipped.values()) == {"pending", "running"}
    # the CLI agrees
    out = subprocess.run(
        [sys.executable, "-m", "benchmark.status", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert sorted(c["state"] for c in json.loads(out)) == ["pending", "pending", "running"]
    for s in specs:
        (slurm_store.artifacts / s.fingerprint).mkdir(parents=True, exist_ok=True)
        (slurm_store.artifacts / s.fingerprint / "go").touch()
    st = wait_for("3 cells done", lambda: all_settled([s.fingerprint for s in specs]), 60)
    assert {st[s.fingerprint].state for s in specs} == {"done"}


@pytest.mark.slurm
def test_preempted_cell_checkpoints_requeues_and_resumes(
    make_executor,
    slurm_store,
) -> None:
    ex = make_executor(time_min=5)  # >= 5: see SLURM_LOCAL.md (warning signal timing)
    spec = ToySpec("ckpt", mode="steps", steps=6, step_s=1.0)
    (job_id,) = ex.submit([spec])
    ckpt = slurm_store.artifacts / spec.fingerprint / "ckpt.json"

    def step() -> int:
        return json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0

    wait_for("two steps", lambda: step() >= 2, 60, every=0.2)
    ex.jobs[spec.fingerprint]._interrupt()  # SIGTERM + USR2, as a preemption
    wait_for(
        "checkpoint hook ran",
        (slurm_store.artifacts / spec.fingerprint / "hook.json").exists,
        30,
        every=0.2,
    )
    st = wait_for(
        "requeued cell",
        lambda: states()[spec.fingerprint].state != "running" and states(),
        30,
        every=0.3,
    )
    assert st[spec.fingerprint].state == "pending"  # requeued: neither failed nor running
    st = wait_for("resumed cell done", lambda: all_settled([spec.fingerprint]), 120)
    assert st[spec.fingerprint].state == "done"
    record = json.loads((slurm_store.cell(spec.fingerprint) / "record.json").read_text())
    starts = record["starts"]
    assert len(starts) == 2 and starts[0] == 0 and starts[1] >= 2, starts  # resumed, not redone
    hook = json.loads((slurm_store.artifacts / spec.fingerprint / "hook.json").read_text())
    assert hook["step"] >= 2
    assert submitted(slurm_store, spec.fingerprint)["job_id"] == job_id  # same job, requeued


@pytest.mark.slurm
def test_job_killed_by_the_scheduler_shows_failed_with_reason(
    make_executor,
    slurm_store,
) -> None:
    ex = make_executor()
    spec = ToySpec("victim", mode="sleep")
    (job_id,) = ex.submit([spec])
    wait_for("victim running", lambda: states()[spec.fingerprint].state == "running", 60)
    subprocess.run(["scancel", job_id], check=True, timeout=30)
    st = wait_for("victim failed", lambda: all_settled([spec.fingerprint]), 60)
    cell = st[spec.fingerprint]
    assert cell.state == "failed" and cell.job_id == job_id
    assert cell.detail.startswith("CANCELLED") and cell.scheduler_state == "CANCELLED"
    assert any("CANCELLED" in line for line in cell.log_tail), cell.log_tail
    assert ex.submit([spec]) == []  # failed: only --retry-failed resubmits it


RACER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {repo!r})
    from tests.slurm_fixtures import ToySpec, toy_cell, toy_parent
    from benchmark.slurm import SlurmExecutor
    ex = SlurmExecutor("local", grid="race", task=toy_cell, parent_of=toy_parent)
    sys.stdin.readline()  # start line: both racers submit at the same moment
    print(json.dumps(ex.submit([ToySpec(f"race{{i}}") for i in range(6)])))
""")


@pytest.mark.slurm
def test_racing_submissions_never_duplicate_a_cell(slurm_cluster, slurm_store) -> None:
    code = RACER.format(repo=str(REPO))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    ids = outs[0] + outs[1]
    assert len(ids) == 6 and len(set(ids)) == 6, outs
    assert sorted(len(o) for o in outs) == [0, 6], outs  # the lock holder takes them all
    fps = [f"toy-race{i}" for i in range(6)]
    assert all(submitted(slurm_store, fp)["attempt"] == 1 for fp in fps)
    st = wait_for("raced cells done", lambda: all_settled(fps), 60)
    assert {st[fp].state for fp in fps} == {"done"}
