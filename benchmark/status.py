"""Where every grid cell stands: ``python -m benchmark.status [--grid NAME] [--json]``.

Without ``--grid``: every cell under the results root, grouped by the grid that wrote it, each
labelled with the backbone, recipe and seed its stored spec names.

States come from the result store (``results/runs/<fp>/``) plus at most ONE scheduler
query per invocation (``sacct``; ``squeue`` only where accounting is disabled):

- ``done``: an intact ``record.json`` (its checksum holds).
- ``failed``: ``failed.json`` exists (the cell raised), or its SLURM job ended without a
  record (OUT_OF_MEMORY, NODE_FAIL, TIMEOUT, CANCELLED, ...: the reason is shown), or the
  scheduler has not heard of the job long after it was submitted.
- ``running`` / ``pending``: a process runs it (``running.json``: pid and host; a local
  ``run`` too), or its SLURM job (``submitted.json``) is running / queued.
- ``unsubmitted``: nothing runs it: never submitted, interrupted (its process is gone), or
  its record is damaged. ``run`` runs these cells (again).

Failed cells show the SLURM job id and the last lines of their log.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.store import Cell, list_cells

STATES = ("done", "running", "pending", "failed", "unsubmitted")
PENDING = {
    "PENDING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESV_DEL_HOLD",
    "SUSPENDED",
    "RESIZING",
    "SPECIAL_EXIT",
}
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "STOPPED"}
EXPLAIN = {  # terminal SLURM states of a job that left no record.json / failed.json
    "OUT_OF_MEMORY": "killed by the scheduler: out of memory",
    "NODE_FAIL": "killed by the scheduler: node failure",
    "TIMEOUT": "time limit reached with no requeue left",
    "CANCELLED": "cancelled (scancel, an administrator or the scheduler)",
    "PREEMPTED": "preempted and not requeued",
    "BOOT_FAIL": "node failed to boot",
    "DEADLINE": "deadline reached before it could run",
    "REVOKED": "revoked (federation)",
    "FAILED": "the job failed before the cell could write failed.json",
    "COMPLETED": "the job ended without writing record.json",
}
ACCOUNTING_GRACE_S = 600.0  # a job sacct has never heard of counts as queued this long
QUERY_TIMEOUT_S = 60.0
TAIL_BYTES = 16_384


@dataclass
class JobInfo:
    """One job (or array task) as the scheduler reports it."""

    state: str  # first word of sacct's State: RUNNING, OUT_OF_MEMORY, ...
    exit_code: str = ""
    reason: str = ""


@dataclass
class SchedulerView:
    """The answer of one scheduler query."""

    jobs: dict[str, JobInfo] = field(default_factory=dict)  # "123_4" / "125" → info
    source: str = "sacct"  # "sacct" | "squeue" | "none"
    complete: bool = False  # squeue: a job absent from the answer has left the queue
    error: str = ""  # why no scheduler could be asked
    calls: int = 0


@dataclass
class CellState:
    fingerprint: str
    state: str
    job_id: str | None = None
    detail: str = ""
    log: str | None = None
    log_tail: list[str] = field(default_factory=list)
    scheduler_state: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------ scheduler
def _expand_task_ids(job_id: str) -> list[str]:
    """``123_[0-2,5%2]`` → 123_0 123_1 123_2 123_5; ``123_4`` and ``125`` stay as they are."""
    if "_[" not in job_id:
        return [job_id]
    base, _, rest = job_id.partition("_[")
    ids = []
    for part in rest.rstrip("]").split("%")[0].split(","):
        lo, _, hi = part.partition("-")
        if not lo.isdigit():
            continue
        ids += [f"{base}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return ids


def parse_sacct(text: str) -> dict[str, JobInfo]:
    """Parse ``sacct -X -n -P --format JobID,State,ExitCode,Reason`` output."""
    jobs: dict[str, JobInfo] = {}
    for line in text.splitlines():
        cols = line.split("|")
        if len(cols) < 2 or not cols[0] or "." in cols[0]:
            continue
        info = JobInfo(
            state=(cols[1].split() or ["UNKNOWN"])[0].rstrip("+"),
            exit_code=cols[2] if len(cols) > 2 else "",
            reason=cols[3] if len(cols) > 3 and cols[3] != "None" else "",
        )
        for jid in _expand_task_ids(cols[0]):
            jobs[jid] = info
    return jobs


def parse_squeue(text: str) -> dict[str, JobInfo]:
    """Parse ``squeue -h -r -o '%i|%T|%r'`` output."""
    jobs: dict[str, JobInfo] = {}
    for line in text.splitlines():
        cols = line.strip().split("|")
        if len(cols) >= 2 and cols[0]:
            reason = cols[2] if len(cols) > 2 and cols[2] != "None" else ""
            for jid in _expand_task_ids(cols[0]):
                jobs[jid] = JobInfo(state=cols[1], reason=reason)
    return jobs


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str] | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"no answer in {QUERY_TIMEOUT_S:.0f} s")


def query_scheduler(job_ids: Iterable[str]) -> SchedulerView:
    """ONE ``sacct`` call for all ``job_ids`` (array ids are asked once, for all their tasks).

    Where accounting is disabled, one ``squeue`` call instead (a job it does not list has
    left the queue). No job ids: no call at all.
    """
    bases = sorted({j.split("_", 1)[0] for j in job_ids if j})
    if not bases:
        return SchedulerView(source="none")
    proc = _run(
        [
            "sacct",
            "-X",
            "-n",
            "-P",
            "--format",
            "JobID,State,ExitCode,Reason",
            "-j",
            ",".join(bases),
        ]
    )
    if proc is not None and proc.returncode == 0:
        return SchedulerView(jobs=parse_sacct(proc.stdout), source="sacct", calls=1)
    sacct_err = "sacct not found" if proc is None else proc.stderr.strip()
    if proc is not None and "accounting storage is disabled" not in proc.stderr.lower():
        return SchedulerView(source="none", error=f"sacct failed: {sacct_err}", calls=1)
    user = os.environ.get("USER") or str(os.getuid())
    proc = _run(["squeue", "-h", "-r", "-t", "all", "-u", user, "-o", "%i|%T|%r"])
    if proc is None or proc.returncode != 0:
        err = "squeue not found" if proc is None else proc.stderr.strip()
        return SchedulerView(source="none", error=f"{sacct_err}; squeue: {err}", calls=1)
    return SchedulerView(jobs=parse_squeue(proc.stdout), source="squeue", complete=True, calls=1)


# ------------------------------------------------------------------------- result store
def tail_lines(path: str | Path | None, n: int) -> list[str]:
    """The last ``n`` lines of a (possibly large) log file; [] if it cannot be read."""
    if not path or n <= 0:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-n:]


def _failed_from_json(fp: str, failed: dict[str, Any], sub: dict[str, Any], tail: int) -> CellState:
    log = failed.get("log") or sub.get("log")
    lines = tail_lines(log, tail) if log and Path(str(log)).exists() else []
    if not lines and failed.get("traceback_tail"):
        tb = failed["traceback_tail"]
        lines = (tb if isinstance(tb, list) else str(tb).splitlines())[-tail:]
    return CellState(
        fp,
        "failed",
        job_id=sub.get("job_id") or failed.get("job_id"),
        detail=str(failed.get("error", "failed.json written"))[:500],
        log=str(log) if log else None,
        log_tail=lines,
    )


def cell_states(
    fingerprints: Iterable[str] | None = None,
    *,
    results: Path | None = None,
    query: Callable[[Iterable[str]], SchedulerView] = query_scheduler,
    tail: int = 5,
    now: float | None = None,
) -> list[CellState]:
    """State of each cell (all cells under ``results/runs`` when ``fingerprints`` is None)."""
    if fingerprints is None:
        cells = list_cells(results)
    else:
        cells = [Cell(fp, results) for fp in dict.fromkeys(fingerprints)]
    now = time.time() if now is None else now
    out: dict[str, CellState] = {}
    waiting: dict[str, tuple[Cell, dict[str, Any]]] = {}  # cells the scheduler decides
    for cell in cells:
        fp = cell.fingerprint
        names = cell.files()
        if Cell.RECORD in names:
            record, damaged = cell.load_record()
            if damaged is None and not (record or {}).get("smoke"):
                out[fp] = CellState(fp, "done")
                continue
            why = damaged or "a smoke-test record"  # (run --smoke) neither is a result: runs again
            out[fp] = CellState(fp, "unsubmitted", detail=f"{why}; runs again")
            continue
        sub = (cell.read(Cell.SUBMITTED) or {}) if Cell.SUBMITTED in names else {}
        running = (cell.read(Cell.RUNNING) or {}) if Cell.RUNNING in names else {}
        if running and not (sub.get("executor") == "slurm" and not _here(running)):
            out[fp] = _from_process(fp, running, sub)
        elif Cell.FAILED in names:
            out[fp] = _failed_from_json(fp, cell.read(Cell.FAILED) or {}, sub, tail)
        elif sub.get("executor") == "slurm" and sub.get("job_id"):
            waiting[fp] = (cell, sub)
            out[fp] = CellState(fp, "pending", job_id=str(sub["job_id"]), log=sub.get("log"))
        elif sub:
            out[fp] = CellState(
                fp,
                "pending",
                job_id=sub.get("job_id"),
                detail=f"submitted to {sub.get('executor', '?')} executor",
            )
        else:
            out[fp] = CellState(fp, "unsubmitted")
    if waiting:
        view = query([str(sub["job_id"]) for _, sub in waiting.values()])
        for fp, (cell, sub) in waiting.items():
            out[fp] = _from_scheduler(cell, out[fp], sub, view, tail, now)
    return list(out.values())


def _here(running: dict[str, Any]) -> bool:
    return running.get("host") == socket.gethostname()


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _from_process(fp: str, running: dict[str, Any], sub: dict[str, Any]) -> CellState:
    """A cell with ``running.json``: running while its process lives; a process of this host
    that is gone was killed mid-run (the cell resumes from its checkpoint when run again)."""
    who = f"pid {running.get('pid')} on {running.get('host')}"
    job = sub.get("job_id") or running.get("job_id")
    if not _here(running):
        return CellState(fp, "running", job_id=job, detail=f"{who} (not checked from here)")
    if _alive(running.get("pid")):
        return CellState(fp, "running", job_id=job, detail=who)
    return CellState(fp, "unsubmitted", job_id=job,
                     detail=f"interrupted: {who} is gone; rerun to resume")


def _from_scheduler(
    cell: Cell, cs: CellState, sub: dict[str, Any], view: SchedulerView, tail: int, now: float
) -> CellState:
    job = view.jobs.get(str(sub["job_id"]))
    if job is not None and job.state in PENDING:
        cs.state, cs.scheduler_state = "pending", job.state
        cs.detail = job.reason or job.state
        return cs
    if job is not None and job.state in RUNNING:
        cs.state, cs.scheduler_state, cs.detail = "running", job.state, ""
        return cs
    # terminal, unknown, or no scheduler answer; the job may have just written its result
    if cell.path(Cell.RECORD).exists() and cell.load_record()[1] is None:
        return CellState(cs.fingerprint, "done", job_id=cs.job_id)
    if cell.path(Cell.FAILED).exists():
        return _failed_from_json(cs.fingerprint, cell.read(Cell.FAILED) or {}, sub, tail)
    age = now - float(sub.get("submitted_ts", now))
    if job is None and view.source == "none":
        cs.detail = f"scheduler state unknown ({view.error})"
        return cs  # stays "pending": nothing says it ended
    if job is None and not view.complete and age < ACCOUNTING_GRACE_S:
        cs.detail = "submitted; not yet in accounting"
        return cs
    if job is None:
        where = "squeue" if view.complete else "sacct"
        state, why = "UNKNOWN", f"job unknown to {where} {age / 60:.0f} min after submission"
    else:
        state = job.state
        why = EXPLAIN.get(state, f"job ended in state {state}")
        if job.exit_code not in ("", "0:0"):  # sacct's Reason is the last *pending* reason
            why = f"{why} (exit code {job.exit_code})"
    return CellState(
        cs.fingerprint,
        "failed",
        job_id=cs.job_id,
        detail=f"{state}: {why}",
        log=sub.get("log"),
        log_tail=tail_lines(sub.get("log"), tail),
        scheduler_state=state,
    )


# --------------------------------------------------------------------------------- CLI
EXAMPLE = "python -m benchmark.status --grid demo --only recipe=ft --state failed"
EXITS = "0 shown; 2 invalid grid or arguments"
NO_SPEC = "(no spec.json)"


def _label(spec: Any) -> str:
    return f"{spec.family} {spec.backbone.label} {spec.recipe.label} seed {spec.seed}"


def _grid_cells(name: str, overrides: list[str] | None = None,
                only: list[str] | None = None) -> tuple[str, dict[str, str]]:
    """The grid's name and {fingerprint: short label} of every cell it runs (parents too)."""
    from benchmark.grid import load_grid

    grid = load_grid(name, overrides=overrides or (), only=only or ())
    return grid.title, {s.fingerprint: _label(s) for s in grid.cells()}


def stored_cells(results: Path | None = None) -> dict[str, tuple[str, str]]:
    """{fingerprint: (grid, label)} of every cell under the results root, read from its
    ``spec.json`` (the grid that wrote it; backbone, recipe, seed)."""
    from benchmark.spec import spec_from_json

    out = {}
    for cell in list_cells(results):
        data = cell.read(Cell.SPEC) or {}
        try:
            label = _label(spec_from_json(data["spec"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            out[cell.fingerprint] = (NO_SPEC, "")
            continue
        out[cell.fingerprint] = (str(data.get("grid") or "?"), label)
    return out


def render(states: list[CellState], title: str = "", labels: dict[str, str] | None = None) -> str:
    counts = Counter(s.state for s in states)
    summary = ", ".join(f"{k} {counts[k]}" for k in STATES if counts[k])
    lines = [f"{title}{len(states)} cells: {summary or 'none'}"]
    width = max((len(v) for v in (labels or {}).values()), default=0)
    run = f"{'RUN':<{width}} " if width else ""
    if states:
        lines.append(f"{'CELL':<14} {run}{'STATE':<11} {'JOB':<14} DETAIL")
    for s in states:
        run = f"{(labels or {}).get(s.fingerprint, ''):<{width}} " if width else ""
        lines.append(
            f"{s.fingerprint[:14]:<14} {run}{s.state:<11} {s.job_id or '-':<14} {s.detail}"
        )
        if s.state == "failed":
            if s.log:
                lines.append(f"    log: {s.log}")
            lines += [f"    | {t}" for t in s.log_tail]
    return "\n".join(lines)


def render_by_grid(states: list[CellState], stored: dict[str, tuple[str, str]]) -> str:
    """One table per grid that wrote cells (cells without a spec last)."""
    groups: dict[str, list[CellState]] = {}
    for s in states:
        groups.setdefault(stored.get(s.fingerprint, (NO_SPEC, ""))[0], []).append(s)
    order = sorted(groups, key=lambda g: (g == NO_SPEC, g))
    labels = {fp: label for fp, (_, label) in stored.items()}
    if not order:
        return render([])
    return "\n\n".join(render(groups[g], title=f"grid {g}: ", labels=labels) for g in order)


def main(argv: list[str] | None = None) -> int:
    from benchmark.commandline import add_grid_selection, add_root, parser

    ap = parser("python -m benchmark.status", __doc__, example=EXAMPLE, exits=EXITS,
                description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1])
    ap.add_argument("--grid", help="only the cells of this grid (name or YAML path)")
    add_grid_selection(ap)
    add_root(ap)
    ap.add_argument("--json", action="store_true", help="one JSON list of cell states")
    ap.add_argument("--state", choices=STATES, action="append", help="only cells in this state")
    ap.add_argument("--tail", type=int, default=5, help="log lines shown per failed cell")
    args = ap.parse_args(argv)
    if (args.overrides or args.only) and not args.grid:
        ap.error("--set and --only need --grid")
    try:
        root = _root(args)
    except Exception as e:  # noqa: BLE001 — report a bad grid as one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    from benchmark.store.files import rooted

    with rooted(root):
        return _show(args)


def _root(args: argparse.Namespace) -> Path | None:
    from benchmark.store.files import work_root

    grid = None
    if args.grid:
        from benchmark.grid import grid_path

        grid = grid_path(args.grid)
    return work_root(args.root, grid, variant=bool(args.overrides))


def _show(args: argparse.Namespace) -> int:
    title, fps, labels = "", None, None
    if args.grid:
        try:
            name, labels = _grid_cells(args.grid, args.overrides, args.only)
            fps = list(labels)
        except Exception as e:  # noqa: BLE001 — report a bad grid as one line each problem
            for line in str(e).splitlines():
                print(f"error: {line}", file=sys.stderr)
            return 2
        title = f"grid {name}: "
    states = cell_states(fps, tail=args.tail)
    if args.state:
        states = [s for s in states if s.state in args.state]
    if args.json:
        text = json.dumps([s.to_json() for s in states], indent=1)
    elif fps is None:
        text = render_by_grid(states, stored_cells())
    else:
        text = render(states, title=title, labels=labels)
    try:
        print(text)
    except BrokenPipeError:  # `status | head`
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
