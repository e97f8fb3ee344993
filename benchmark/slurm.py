"""Grid cells on SLURM through submitit job arrays: submit, walk away, resume, retry.

``SlurmExecutor(profile).submit(specs)`` queues every cell that is not done, queued or
running (failed ones too with ``retry_failed=True``) and returns at once; all state lives
under ``results/runs/<fp>/`` (``submitted.json`` here, ``record.json`` / ``failed.json``
from the cell) and ``python -m benchmark.status`` reads it back.

- One array task = one cell = ``run_cell(spec)``: training, then every evaluation of that
  checkpoint, in the same task (see slurm/README.md for why not a dependency per split).
- A cell whose parent (DP for DP-FT) is submitted in the same call goes into a later
  *stage* whose arrays start ``afterany`` the arrays holding the parents.
- Each stage is split into ``ceil(n / MaxArraySize)`` arrays, one sbatch call each,
  throttled by the profile's ``array_parallelism``.
- ``CellTask`` is ``submitit.helpers.Checkpointable``: on the preemption / time-limit signal
  every running training saves (``benchmark.runtime``) and the same cell is requeued; it
  resumes from its last atomic checkpoint.
- Submission holds an exclusive lock on ``results/.slurm-submit.lock`` while it reads the
  cell states (one ``sacct``) and writes ``submitted.json``: two racing ``run`` commands
  cannot submit a cell twice.

It is over 400 lines because submission, array planning, the requeueing task and the
submitit glue are one protocol with one lock; the states it reads back live in
:mod:`benchmark.status`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import submitit
from submitit.core import core, utils
from submitit.helpers import Checkpointable, DelayedSubmission

from benchmark.errors import BenchmarkError, ConfigError
from benchmark.profiles import ClusterInfo, Profile, check_cluster, load_profile
from benchmark.runtime import checkpoint_now
from benchmark.status import CellState, cell_states
from benchmark.store import REPO_ROOT, Cell, artifacts_root, file_lock, results_root

SBATCH_TIMEOUT_S = 120
LOCK_TIMEOUT_S = 600.0
ENV_KEYS = ("BENCH_RESULTS", "BENCH_ARTIFACTS", "BENCH_DATA")


class SubmissionError(BenchmarkError):
    """sbatch refused or failed part-way; what was submitted is recorded."""


# ---------------------------------------------------------------------------- the task
def join_job() -> None:
    """Fit this task to its allocation: torch threads = the CPUs SLURM gave the task (no
    oversubscription, and the thread count that bit-for-bit reproduction depends on), and,
    when the job has several tasks (``tasks_per_run``), the RANK / WORLD_SIZE / MASTER_*
    variables the training loop's DDP reads."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit() and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(cpus))
    elif cpus and cpus.isdigit():
        os.environ.setdefault("OMP_NUM_THREADS", cpus)
    if int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1:
        from submitit.helpers import TorchDistributedEnvironment

        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


class CellTask(Checkpointable):
    """One grid cell as a submitit task: ``run_cell(spec, grid=...)``, requeued on preemption.

    ``env`` (the submitter's BENCH_* roots) is applied before the cell runs so that the job
    writes into the same result store the submitting ``run`` / ``status`` read. ``task``
    replaces ``run_cell`` (tests use a toy cell).
    """

    def __init__(
        self,
        task: Callable[[Any], Any] | None = None,
        env: dict[str, str] | None = None,
        grid: str = "",
    ) -> None:
        self.task = task
        self.env = dict(env or {})
        self.grid = grid

    def __call__(self, spec: Any) -> Any:
        os.environ.update(self.env)
        join_job()
        try:
            if self.task is not None:
                return self.task(spec)
            from benchmark.pipeline import run_cell

            return run_cell(spec, grid=self.grid, progress=False)
        except Exception as e:  # not SystemExit: submitit exits on purpose after a requeue
            _write_failed(spec, e)
            raise

    def checkpoint(self, spec: Any) -> DelayedSubmission:
        """Preemption / time-limit signal: save state now, then requeue this same cell.

        Every running training saves (``benchmark.runtime.checkpoint_now``); the periodic
        checkpoints bound what is lost when the signal is a plain SIGTERM, which submitit
        ignores.
        """
        checkpoint_now()
        return DelayedSubmission(self, spec)


def _write_failed(spec: Any, error: BaseException) -> None:
    """failed.json for a cell whose task raised, unless the cell wrote one itself."""
    log, job_id = None, None
    with contextlib.suppress(Exception):
        env = submitit.JobEnvironment()
        log, job_id = str(env.paths.stdout), env.job_id
    Cell(spec.fingerprint).write_failed(
        {
            "error": f"{type(error).__name__}: {error}",
            "traceback_tail": traceback.format_exc().splitlines()[-30:],
            "log": log,
            "job_id": job_id,
        },
        keep_existing=True,
    )


# ------------------------------------------------------------------------------ planning
@dataclass
class SubmissionPlan:
    """Which cells go out, in which stage and array; which are skipped and why."""

    stages: list[list[list[Any]]] = field(default_factory=list)  # stage → arrays → specs
    skipped: dict[str, str] = field(default_factory=dict)  # fingerprint → state
    array_limit: int = 1

    @property
    def sbatch_calls(self) -> int:
        return sum(len(arrays) for arrays in self.stages)

    @property
    def specs(self) -> list[Any]:
        return [s for arrays in self.stages for chunk in arrays for s in chunk]


ParentOf = Callable[[Any], Any]  # spec → the spec it starts from, or None


def plan_arrays(
    specs: Sequence[Any], array_limit: int, parent_of: ParentOf
) -> list[list[list[Any]]]:
    """Group specs into stages (a cell after its parent when both are submitted) and split
    each stage into arrays of at most ``array_limit`` tasks: ``ceil(n / limit)`` per stage."""

    def _parent_fp(spec: Any) -> str | None:
        parent = parent_of(spec)
        return None if parent is None else parent.fingerprint

    if array_limit < 1:
        raise ValueError(f"array_limit must be >= 1, got {array_limit}")
    by_fp = {s.fingerprint: s for s in specs}
    depth: dict[str, int] = {}

    def depth_of(fp: str, seen: tuple[str, ...] = ()) -> int:
        if fp not in depth:
            parent = _parent_fp(by_fp[fp])
            if parent in seen:
                raise ConfigError(f"cell {fp}: parent chain loops through {parent}")
            depth[fp] = 0 if parent not in by_fp else 1 + depth_of(parent, (*seen, fp))
        return depth[fp]

    stages: list[list[Any]] = []
    for spec in by_fp.values():
        d = depth_of(spec.fingerprint)
        while len(stages) <= d:
            stages.append([])
        stages[d].append(spec)
    return [[st[i : i + array_limit] for i in range(0, len(st), array_limit)] for st in stages]


# ---------------------------------------------------------------------- submitit glue
class _SubmititSlurm(submitit.SlurmExecutor):
    """submitit's SlurmExecutor with a time bound on sbatch, kept for array submissions
    (submitit builds a plain SlurmExecutor for arrays, dropping overrides and ``python``).

    ``_internal_process_submissions`` is submitit 1.5.4's own (submitit/slurm/slurm.py,
    ``SlurmExecutor._internal_process_submissions``) with one change: the array executor is
    ``type(self)`` with ``python`` kept. submitit has no public hook for it, so
    ``tests/test_submitit_pin.py`` pins the version and the source this copies."""

    def _make_submission_command(self, submission_file_path: Path) -> list[str]:
        return ["timeout", str(SBATCH_TIMEOUT_S), "sbatch", str(submission_file_path)]

    def _internal_process_submissions(
        self, delayed_submissions: list[utils.DelayedSubmission]
    ) -> list[core.Job[Any]]:
        if len(delayed_submissions) == 1:
            return super()._internal_process_submissions(delayed_submissions)
        folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        timeout_min = self.parameters.get("time", 5)
        pickle_paths = []
        for d in delayed_submissions:
            pickle_path = folder / f"{os.urandom(16).hex()}.pkl"
            d.set_timeout(timeout_min, self.max_num_timeout)
            d.dump(pickle_path)
            pickle_paths.append(pickle_path)
        n = len(delayed_submissions)
        array_ex = type(self)(self.folder, self.max_num_timeout, python=self.python)
        array_ex.update_parameters(**self.parameters)
        array_ex.parameters["map_count"] = n
        self._throttle()
        first = array_ex._submit_command(self._submitit_command_str)
        tasks = list(range(first.num_tasks))
        jobs: list[core.Job[Any]] = [
            submitit.SlurmJob(folder=self.folder, job_id=f"{first.job_id}_{a}", tasks=tasks)
            for a in range(n)
        ]
        for job, pickle_path in zip(jobs, pickle_paths, strict=True):
            job.paths.move_temporary_file(pickle_path, "submitted_pickle")
        return jobs


def make_executor(profile: Profile, folder: Path, job_name: str) -> _SubmititSlurm:
    """The submitit executor for ``profile``, writing into ``folder``: its sbatch
    parameters, with the repository importable and the working directory on the nodes."""
    ex = _SubmititSlurm(folder, max_num_timeout=profile.max_requeues, python=profile.python)
    params = profile.sbatch_parameters()
    params["setup"] = [
        *params["setup"],
        f"export PYTHONPATH={REPO_ROOT}${{PYTHONPATH:+:$PYTHONPATH}}",
    ]
    params["additional_parameters"].setdefault("chdir", str(REPO_ROOT))
    ex.update_parameters(job_name=job_name, stderr_to_stdout=True, wckey=None, **params)
    return ex


def submission_lock(
    results: Path, timeout: float = LOCK_TIMEOUT_S
) -> contextlib.AbstractContextManager:
    """Exclusive lock on ``results/.slurm-submit.lock`` (flock: per open file, NFS-safe on
    Linux), waited for at most ``timeout`` seconds."""
    return file_lock(results / ".slurm-submit.lock", timeout, poll_s=0.1)


# ---------------------------------------------------------------------------- executor
class SlurmExecutor:
    """Submit grid cells as SLURM job arrays and return without waiting for them.

    ``profile``: a profile name (``slurm/<name>.yaml``), a YAML path or a ``Profile``; it
    is validated against the live cluster here, before anything is submitted.
    ``task``: the per-cell callable (default ``benchmark.pipeline.run_cell``); it must be
    picklable and importable on the compute nodes. ``parent_of``: spec → the spec it starts
    from (default ``benchmark.recipes.parent_of``; DP-FT cells wait for their DP parents).
    """

    def __init__(
        self,
        profile: str | Profile = "local",
        *,
        grid: str = "",
        task: Callable[[Any], Any] | None = None,
        parent_of: ParentOf | None = None,
        check: bool = True,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
    ) -> None:
        if parent_of is None:
            from benchmark.recipes import parent_of
        self.parent_of = parent_of
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        self.cluster: ClusterInfo | None = check_cluster(self.profile) if check else None
        self.grid = grid
        self.task = task
        self.lock_timeout_s = lock_timeout_s
        self.sbatch_calls = 0
        self.jobs: dict[str, core.Job[Any]] = {}  # fingerprint → submitit job (this process)
        self.last_plan: SubmissionPlan | None = None

    @property
    def array_limit(self) -> int:
        if self.cluster is None:
            self.cluster = check_cluster(self.profile, test_submit=False)
        return self.cluster.array_limit(self.profile)

    def plan(
        self,
        specs: Sequence[Any],
        *,
        retry_failed: bool = False,
        states: dict[str, CellState] | None = None,
    ) -> SubmissionPlan:
        """What ``submit`` would do now (one scheduler query; nothing is submitted)."""
        unique = list({s.fingerprint: s for s in specs}.values())
        if states is None:
            states = {c.fingerprint: c for c in cell_states([s.fingerprint for s in unique])}
        todo, skipped = [], {}
        for spec in unique:
            state = states[spec.fingerprint].state
            if state == "unsubmitted" or (state == "failed" and retry_failed):
                todo.append(spec)
            else:
                skipped[spec.fingerprint] = state
        limit = self.array_limit
        return SubmissionPlan(plan_arrays(todo, limit, self.parent_of), skipped, limit)

    def submit(self, specs: Sequence[Any], *, retry_failed: bool = False) -> list[str]:
        """Queue the cells that need it; return their SLURM job ids (``<array>_<task>``).

        Done, queued and running cells are never resubmitted; failed ones only with
        ``retry_failed``. Returns as soon as sbatch has accepted every array.
        """
        results = results_root().resolve()
        with submission_lock(results, self.lock_timeout_s):
            plan = self.plan(specs, retry_failed=retry_failed)
            self.last_plan = plan
            if not plan.stages:
                return []
            return self._submit_plan(plan, results)

    def _submit_plan(self, plan: SubmissionPlan, results: Path) -> list[str]:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        folder = (
            artifacts_root().resolve() / "slurm" / (self.grid or "cells") / f"{stamp}-{os.getpid()}"
        )
        folder.mkdir(parents=True, exist_ok=True)
        ex = make_executor(self.profile, folder, f"bench-{self.grid or 'cells'}")
        env = {
            k: str(p)
            for k, p in (
                ("BENCH_RESULTS", results),
                ("BENCH_ARTIFACTS", artifacts_root().resolve()),
            )
        }
        if "BENCH_DATA" in os.environ:
            env["BENCH_DATA"] = str(Path(os.environ["BENCH_DATA"]).resolve())
        task = CellTask(self.task, env, grid=self.grid)
        array_of: dict[str, str] = {}  # fingerprint → array job id (this call)
        ids: list[str] = []
        for stage in plan.stages:
            for chunk in stage:
                parents = sorted(
                    {
                        array_of[p.fingerprint]
                        for s in chunk
                        if (p := self.parent_of(s)) is not None and p.fingerprint in array_of
                    }
                )
                if parents:
                    ex.update_parameters(dependency="afterany:" + ":".join(parents))
                else:
                    ex.parameters.pop("dependency", None)
                for spec in chunk:
                    cell = Cell(spec.fingerprint, results)
                    cell.write_spec(self.grid, spec.to_json(), overwrite=False)
                    cell.retire_failed()
                try:
                    jobs = ex.map_array(task, chunk)
                except Exception as e:
                    raise SubmissionError(
                        f"sbatch failed after {len(ids)} of {len(plan.specs)} cells were "
                        f"queued (running `run` again submits the rest): {e}"
                    ) from e
                finally:
                    self.sbatch_calls += 1
                for spec, job in zip(chunk, jobs, strict=True):
                    self._record(Cell(spec.fingerprint, results), job)
                    array_of[spec.fingerprint] = str(job.job_id).split("_", 1)[0]
                    self.jobs[spec.fingerprint] = job
                    ids.append(str(job.job_id))
        return ids

    def _record(self, cell: Cell, job: core.Job[Any]) -> None:
        old = cell.read(Cell.SUBMITTED) or {}
        history = list(old.get("history", []))
        if old.get("job_id"):
            history.append({k: old.get(k) for k in ("job_id", "submitted_at", "log")})
        job_id = str(job.job_id)
        array_id, _, task = job_id.partition("_")
        now = time.time()
        cell.write_submitted(
            {
                "executor": "slurm",
                "job_id": job_id,
                "array_job_id": array_id,
                "array_task": int(task) if task else None,
                "submitted_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
                "submitted_ts": now,
                "log": str(job.paths.stdout),
                "profile": self.profile.name,
                "grid": self.grid,
                "attempt": len(history) + 1,
                "history": history,
            },
        )


def submit_grid(
    grid: Any, specs: Sequence[Any], *, profile: str | None, retry_failed: bool = False
) -> int:
    """``run --executor slurm``: validate the profile against the cluster, queue the cells
    that need it, print what went out and what was skipped, return an exit code (0)."""
    if not profile:
        from benchmark.profiles import available_profiles

        raise ConfigError(
            f"--executor slurm needs --profile NAME (profiles: {', '.join(available_profiles())})"
        )
    name = getattr(grid, "name", str(grid))
    ex = SlurmExecutor(profile, grid=name)
    from benchmark.cpu_pinning import pinned_environment

    # sbatch exports this environment: a reproducible_cpu grid's tasks start pinned
    with pinned_environment(getattr(grid, "reproducible_cpu", False)):
        ids = ex.submit(specs, retry_failed=retry_failed)
    plan = ex.last_plan or SubmissionPlan()
    arrays = sorted({i.split("_", 1)[0] for i in ids})
    print(
        f"queued {len(ids)} cell(s) on profile {ex.profile.name!r} ({ex.profile.partition}): "
        f"{ex.sbatch_calls} sbatch call(s) in {len(plan.stages)} stage(s), "
        f"arrays of <= {plan.array_limit}; job ids {', '.join(arrays) or '-'}"
    )
    if plan.skipped:
        counts: dict[str, int] = {}
        for state in plan.skipped.values():
            counts[state] = counts.get(state, 0) + 1
        print(
            "not submitted: "
            + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            + ("" if retry_failed or "failed" not in counts else " (use --retry-failed)")
        )
    print(f"follow with: python -m benchmark.status --grid {name}")
    return 0
