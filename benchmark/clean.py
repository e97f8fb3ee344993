"""``python -m benchmark.clean --grid G [--grid H ...] [--dry-run | --yes]``: remove what no
cell needs — listed first, removed only when confirmed.

Grids change; their old cells leave trainings, evaluations and run directories behind that
nothing will read again, and killed writes leave temp files. Removable are:

- trainings under ``<artifacts>/train/`` (and evaluations under their ``eval/``) that no
  cell of the given grids uses, no run record refers to (records keep the predictions their
  bootstrap intervals are computed from), no kept run directory of any grid (below: running,
  queued or resumable) will use, and that hold no resumable checkpoint (``last.pt`` /
  ``previous.pt``: a preempted training resumes from it);
- run directories under ``<results>/runs/`` without a record that are no cell of the given
  grids, that no process or scheduler job runs or queues, and whose training holds no
  resumable checkpoint (abandoned plans, failures of changed grids);
- temp files of atomic writes older than 10 minutes, ``*.damaged`` files set aside by
  earlier runs, and lock files of cells that are gone.

Records are never removed. The grids must resolve their data (their fingerprints include
the datasets' content), so what a grid uses is computed exactly, never guessed. The root is
the one ``run`` uses for the same grid (``--root``, ``$BENCH_RESULTS``, ``runs/<grid>/`` for
a grid other than the committed demo); ``--set`` and ``--only`` narrow what is kept the way
they narrow what ``run`` runs.

Everything removable is listed first; then ``clean`` asks (a terminal), or removes with
``--yes``. Without a terminal and without ``--yes`` it removes nothing and exits 2.
Exit status: 0 done (or nothing to do, or ``--dry-run``), 1 declined, 2 refused or bad input.

    python -m benchmark.clean --grid demo --dry-run   # what would go, and why
    python -m benchmark.clean --grid demo --yes       # remove it without asking
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError
from benchmark.status import SchedulerView, cell_states
from benchmark.store import (
    Cell,
    TrainingDir,
    artifacts_root,
    list_cells,
    results_root,
    warn,
)
from benchmark.store.files import rooted, work_root

TEMP_AGE_S = 600.0
LIVE = ("running", "pending")  # a process or a scheduler job has the cell


@dataclass
class Needs:
    """What must stay: cell fingerprints, trainings and (training, evaluation) pairs."""

    cells: set[str] = field(default_factory=set)
    trainings: set[str] = field(default_factory=set)
    evals: set[tuple[str, str]] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)  # live cells whose training is unknown

    def add_spec(self, spec: Any) -> None:
        self.trainings.add(spec.train_fingerprint)
        self.evals.add((spec.train_fingerprint, spec.eval_fingerprint))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _add_record_paths(needs: Needs, record: dict[str, Any]) -> None:
    artifacts = record.get("artifacts") or {}
    paths = [artifacts.get("checkpoint", "")]
    paths += list((artifacts.get("predictions") or {}).values())
    for rel in paths:
        parts = Path(str(rel)).parts  # train/<tfp>/... and train/<tfp>/eval/<efp>/...
        if len(parts) >= 2 and parts[0] == "train":
            needs.trainings.add(parts[1])
        if len(parts) >= 4 and parts[2] == "eval":
            needs.evals.add((parts[1], parts[3]))


def _cell_spec(cell: Cell) -> Any | None:
    """The run spec a cell directory was written for (``spec.json``); None if unreadable."""
    from benchmark.spec import spec_from_json

    data = cell.read(Cell.SPEC) or {}
    try:
        return spec_from_json(data["spec"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _resumable(training: TrainingDir) -> bool:
    return training.last.exists() or training.previous.exists()


def _no_scheduler(job_ids: Iterable[str]) -> SchedulerView:
    """clean never asks SLURM: a submitted cell counts as queued (kept)."""
    return SchedulerView(jobs={}, source="none", complete=False, calls=0,
                         error="not queried by clean")


def removable(grids: list[str], *, results: Path | None = None,
              artifacts: Path | None = None, overrides: Sequence[str] = (),
              only: Sequence[str] = ()) -> list[tuple[Path, str]]:
    """(path, why) of everything that no cell of ``grids``, no record, no cell under the
    results root that runs, is queued or can resume, and no resumable checkpoint needs."""
    from benchmark.grid import load_grid  # torch, timm: only once there is work

    results = results_root() if results is None else Path(results)
    artifacts = artifacts_root() if artifacts is None else Path(artifacts)
    needs = Needs()
    for name in grids:
        for spec in load_grid(name, overrides=overrides, only=only).cells():
            needs.cells.add(spec.fingerprint)
            needs.add_spec(spec)
    states = {c.fingerprint: c.state for c in cell_states(results=results, query=_no_scheduler)}
    out: list[tuple[Path, str]] = []
    kept: set[str] = set()
    for cell in list_cells(results):
        fp = cell.fingerprint
        record, _ = cell.load_record()
        if record is not None:
            _add_record_paths(needs, record)
            kept.add(fp)
            continue
        spec = _cell_spec(cell)  # not done, of any grid: it runs, is queued, or resumes
        resumable = spec is not None and _resumable(TrainingDir(spec.train_fingerprint,
                                                                artifacts))
        live = states[fp] in LIVE
        if fp in needs.cells or live or resumable or Cell.RECORD in cell.files():
            kept.add(fp)  # in the grids, live, resumable, or a (damaged) record
            if spec is not None:
                needs.add_spec(spec)
            elif live:
                needs.unknown.append(fp)
            continue
        out.append((cell.dir, f"run directory without a record, not in the grids "
                              f"({states[fp]})"))
    trainings = sorted((artifacts / "train").glob("*"))
    if needs.unknown:  # a live cell whose training cannot be told: keep every training
        warn(f"cell(s) {', '.join(needs.unknown)} run or are queued but their spec.json is "
             "unreadable: no training is removed")
        trainings = []
    for path in trainings:
        if path.name not in needs.trainings:
            if not _resumable(TrainingDir(path.name, artifacts)):
                out.append((path, "training no grid cell, record or unfinished cell uses"))
            continue
        for ev in sorted((path / "eval").glob("*")):
            if (path.name, ev.name) not in needs.evals:
                out.append((ev, "evaluation setting no grid cell, record or unfinished cell "
                                "uses"))
    now = time.time()
    for root in (results / "runs", artifacts):
        for tmp in sorted(root.rglob(".*.tmp")) if root.is_dir() else []:
            if now - tmp.stat().st_mtime > TEMP_AGE_S:
                out.append((tmp, "temp file of a write that was killed"))
        for damaged in sorted(root.rglob("*.damaged")) if root.is_dir() else []:
            out.append((damaged, "damaged file set aside by an earlier run"))
    for lock in sorted((artifacts / "locks").glob("*.lock")):
        if lock.stem not in kept | needs.cells:
            out.append((lock, "lock of a cell that is gone"))
    return _outermost(out)


def _outermost(items: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Drop items inside a directory that is itself listed (removed with it)."""
    dirs = [p for p, _ in items if p.is_dir()]
    return [(p, why) for p, why in items
            if not any(d != p and d in p.parents for d in dirs)]


def _root(args: argparse.Namespace) -> Path | None:
    """The root ``run`` uses for these grids (one rule: :func:`benchmark.store.files.work_root`);
    grids that write into different roots need ``--root``."""
    from benchmark.grid import grid_path

    roots = {work_root(args.root, grid_path(g), variant=bool(args.overrides)) for g in args.grid}
    if len(roots) > 1:
        shown = ", ".join(sorted(str(r or "results/") for r in roots))
        raise BenchmarkError(f"--grid {' '.join(args.grid)}: these grids write into different "
                             f"roots ({shown}); clean one root at a time, or name it with --root")
    return roots.pop()


def confirm(question: str) -> bool | None:
    """The user's answer on a terminal; None when stdin is not one (nobody to ask)."""
    if not sys.stdin or not sys.stdin.isatty():
        return None
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    from benchmark.commandline import add_grid_selection, add_root, parser

    parts = __doc__.split("\n\n")
    ap = parser("python -m benchmark.clean", __doc__, description="\n\n".join(parts[:5]),
                example=parts[-1].strip().splitlines()[0].split("#")[0].strip(),
                exits="0 done (or nothing to do, or --dry-run); 1 declined; 2 refused or bad "
                      "input")
    ap.add_argument("--grid", action="append", required=True,
                    help="a grid whose cells are kept (repeat for several)")
    add_grid_selection(ap)
    add_root(ap)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    mode.add_argument("--yes", "-y", action="store_true",
                      help="remove what is listed without asking")
    args = ap.parse_args(argv)
    try:
        root = _root(args)
        with rooted(root):
            items = removable(args.grid, overrides=args.overrides, only=args.only)
    except BenchmarkError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    total = 0
    for path, why in items:
        size = _size(path)
        total += size
        print(f"would remove {path} ({size / 1e6:.1f} MB): {why}")
    summary = f"{len(items)} item(s), {total / 1e6:.1f} MB"
    if not items:
        print("nothing to remove")
        return 0
    if args.dry_run:
        print(f"{summary} would be freed (dry run: nothing removed)")
        return 0
    if not args.yes:
        answer = confirm(f"remove these {summary}? [y/N] ")
        if answer is None:
            print(f"error: not removing {summary} without confirmation: stdin is not a "
                  "terminal (pass --yes to remove them, --dry-run to only list)",
                  file=sys.stderr)
            return 2
        if not answer:
            print("nothing removed")
            return 1
    for path, _ in items:
        remove(path)
        print(f"removed {path}")
    print(f"{summary} freed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
