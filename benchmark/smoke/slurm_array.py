"""The smoke on SLURM (``run --grid G --smoke --executor slurm --profile P``): the kinds go
out as one job array on the profile (split only where they outnumber the cluster's
``MaxArraySize``), so the rehearsal measures the cluster's own nodes, drivers and memory;
the submitting command waits for the array, a line per kind as it finishes, and collects
each task's :class:`~.cell.KindResult`. Ctrl-C while waiting cancels the array."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import submitit
from submitit.core.utils import UncompletedJobError
from submitit.helpers import as_completed

from benchmark.errors import BenchmarkError
from benchmark.models.checkpoints.catalogue import WeightsEntry
from benchmark.profiles import Profile, check_cluster, load_profile, profile_problems
from benchmark.slurm import SubmissionError, join_job, make_executor
from benchmark.smoke.cell import KindResult
from benchmark.spec import RunSpec

#: roots the tasks get as absolute paths (a job starts in the repository, not here)
PATH_ENV = ("BENCH_DATA", "BENCH_RESULTS", "BENCH_ARTIFACTS", "BENCH_WEIGHTS")
POLL_S = 2.0


def check_profile(name: str | None, *, dry_run: bool) -> tuple[Profile, int | None]:
    """The profile and the most tasks one array may hold, checked before any input is
    provided: a real grid's ``--executor slurm`` errors, then the live cluster (with
    ``sbatch --test-only``; a dry run asks only ``sinfo``, where it is on PATH)."""
    problems = profile_problems(name, cluster=None if dry_run else False)
    if problems:
        raise BenchmarkError(problems[0])
    assert name is not None
    profile = load_profile(name)
    if dry_run:
        return profile, None
    return profile, check_cluster(profile).array_limit(profile)


def profile_line(profile: Profile) -> str:
    gpus = f"gres {profile.gres}" if profile.gres else f"{profile.gpus_per_task} GPU(s)"
    return (f"profile {profile.name!r} (partition {profile.partition}, {profile.cpus_per_task} "
            f"CPU(s), {gpus}, {profile.mem_gb:g} GB, {profile.time_min} min per task)")


class KindTask:
    """One kind as an array task, run in the task's own process (so the peak RSS that
    :func:`~.cell.run_kind` measures is the job's): the smoke's roots, threads fitted to the
    allocation, the stand-in weights ``entries`` registered there. Each stage it enters is
    written to ``<submitit folder>/<job id>.stage``, so a job killed mid-way is placed."""

    def __init__(self, env: dict[str, str], grid: str, entries: tuple[WeightsEntry, ...],
                 logs: Path) -> None:
        self.env, self.grid, self.entries, self.logs = dict(env), grid, entries, logs

    def __call__(self, label: str, spec: RunSpec) -> KindResult:
        from benchmark.smoke.cell import run_kind
        from benchmark.smoke.summary import device_name

        os.environ.update(self.env)
        join_job()
        job = submitit.JobEnvironment()
        stage_file = job.paths.folder / f"{job.job_id}.stage"

        def enter(stage: str) -> None:
            stage_file.write_text(stage)

        result = run_kind(label, spec, self.grid, self.entries, self.logs, isolated=True,
                          on_stage=enter)
        result.device = f"node {socket.gethostname()}: {device_name()}"
        return result


def task_env() -> dict[str, str]:
    """This process's BENCH_* settings (the smoke's roots among them), roots absolute."""
    env = {k: v for k, v in os.environ.items() if k.startswith("BENCH_")}
    for key in PATH_ENV:
        if key in env:
            env[key] = str(Path(env[key]).resolve())
    return env


def run_array(kinds: Sequence[tuple[str, RunSpec]], *, profile: Profile, array_limit: int,
              grid: str, entries: tuple[WeightsEntry, ...], logs: Path, folder: Path,
              finished: Callable[[int, KindResult], None]) -> None:
    """Submit ``kinds`` (label, smoke spec) and wait for them: ``finished(i, result)`` for
    the i-th as its task ends. A task that ended without a result (failed, killed, timed
    out, cancelled) fails its kind at the stage it had reached, or at ``slurm``."""
    folder.mkdir(parents=True, exist_ok=True)
    ex = make_executor(profile, folder, f"smoke-{grid}")
    task = KindTask(task_env(), grid, entries, logs)
    jobs: list[submitit.Job[KindResult]] = []
    for start in range(0, len(kinds), array_limit):
        chunk = kinds[start:start + array_limit]
        try:
            jobs += ex.map_array(task, [label for label, _ in chunk], [s for _, s in chunk])
        except Exception as e:
            _cancel(jobs, folder)
            raise SubmissionError(f"sbatch failed; nothing of the smoke runs: {e}") from e
    arrays = list(dict.fromkeys(str(j.job_id).split("_", 1)[0] for j in jobs))
    split = f" (MaxArraySize: arrays of <= {array_limit})" if len(arrays) > 1 else ""
    print(f"submitted {len(kinds)} kind(s) as SLURM array job {', '.join(arrays)}{split} on "
          f"{profile_line(profile)}; logs in {folder}; waiting (Ctrl-C cancels it)", flush=True)
    index = {str(j.job_id): i for i, j in enumerate(jobs)}
    try:
        for job in as_completed(jobs, poll_frequency=POLL_S):
            i = index[str(job.job_id)]
            finished(i, _outcome(job, *kinds[i]))
    except BaseException:  # Ctrl-C, SIGTERM: nothing is left running on the cluster
        _cancel(jobs, folder)
        print(f"cancelled SLURM array job {', '.join(arrays)} (scancel)", file=sys.stderr,
              flush=True)
        raise


def _outcome(job: submitit.Job[KindResult], label: str, spec: RunSpec) -> KindResult:
    try:
        return job.results()[0]
    except UncompletedJobError as e:
        stage_file = job.paths.folder / f"{job.job_id}.stage"
        stage = stage_file.read_text().strip() if stage_file.is_file() else "slurm"
        said = _last_words(e)
        return KindResult(label, spec.fingerprint, stage=stage or "slurm",
                          error=f"its SLURM job {job.job_id} ended {_state(job)} without a "
                                "result" + (f": {said}" if said else ""),
                          log=str(job.paths.stdout))


def _last_words(error: UncompletedJobError) -> str:
    """The line of the job's log tail (which submitit puts in ``error``) that says most:
    the last error or kill, else the last line."""
    lines = [x.strip() for x in str(error).splitlines()[1:]
             if x.strip(" -") and not x.startswith("Error stream produced")]
    said = [x for x in lines if "error" in x.lower() or "killed" in x.lower()] or lines
    return said[-1][:200] if said else ""


def _state(job: submitit.Job[KindResult]) -> str:
    """The job's state as sacct has it now (a task that raised may still be finishing)."""
    try:
        return job.get_info(mode="force").get("State") or "UNKNOWN"
    except Exception:  # noqa: BLE001 - the state only annotates the failure
        return "UNKNOWN"


def _cancel(jobs: Sequence[submitit.Job[KindResult]], folder: Path) -> None:
    """scancel each array (its id cancels every task of it)."""
    for array in dict.fromkeys(str(j.job_id).split("_", 1)[0] for j in jobs):
        submitit.SlurmJob(folder=folder, job_id=array).cancel(check=False)
