"""``python -m benchmark.clean --grid G [--grid H ...] [--dry-run]``: remove what no cell needs.

Grids change; their old cells leave trainings, evaluations and run directories behind that
nothing will read again, and killed writes leave temp files. This lists, then removes:

- trainings under ``<artifacts>/train/`` (and evaluations under their ``eval/``) that no
  cell of the given grids uses and no run record refers to (records keep the predictions
  their bootstrap intervals are computed from);
- run directories under ``<results>/runs/`` without a record that are no cell of the given
  grids and that no live process runs (abandoned plans, failures of changed grids);
- temp files of atomic writes older than 10 minutes, ``*.damaged`` files set aside by
  earlier runs, and lock files of cells that are gone.

Records are never removed. The grids must resolve their data (their fingerprints include
the datasets' content), so what a grid uses is computed exactly, never guessed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from benchmark.errors import BenchmarkError
from benchmark.grid import load_grid
from benchmark.status import cell_states
from benchmark.store import Cell, artifacts_root, list_cells, results_root

TEMP_AGE_S = 600.0


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _records(results: Path) -> Iterable[dict]:
    for cell in list_cells(results):
        record, _ = cell.load_record()
        if record is not None:
            yield record


def removable(grids: list[str]) -> list[tuple[Path, str]]:
    """(path, why) of everything the grids' cells and the records do not need."""
    cells = [spec for name in grids for spec in load_grid(name).cells()]
    results, artifacts = results_root(), artifacts_root()
    needed_cells = {s.fingerprint for s in cells}
    needed_trainings = {s.train_fingerprint for s in cells}
    needed_evals = {(s.train_fingerprint, s.eval_fingerprint) for s in cells}
    for record in _records(results):
        paths = [record.get("artifacts", {}).get("checkpoint", "")]
        paths += list(record.get("artifacts", {}).get("predictions", {}).values())
        for rel in paths:
            parts = Path(rel).parts  # train/<tfp>/... and train/<tfp>/eval/<efp>/...
            if len(parts) >= 2 and parts[0] == "train":
                needed_trainings.add(parts[1])
            if len(parts) >= 4 and parts[2] == "eval":
                needed_evals.add((parts[1], parts[3]))
    out: list[tuple[Path, str]] = []
    for training in sorted((artifacts / "train").glob("*")):
        if training.name not in needed_trainings:
            out.append((training, "training no grid cell or record uses"))
            continue
        for ev in sorted((training / "eval").glob("*")):
            if (training.name, ev.name) not in needed_evals:
                out.append((ev, "evaluation setting no grid cell or record uses"))
    states = {c.fingerprint: c.state for c in cell_states(results=results, query=_no_scheduler)}
    kept = set()
    for cell in list_cells(results):
        fp = cell.fingerprint
        if fp in needed_cells or Cell.RECORD in cell.files() or states[fp] == "running":
            kept.add(fp)
            continue
        out.append((cell.dir, f"run directory without a record, not in the grids ({states[fp]})"))
    now = time.time()
    for root in (results / "runs", artifacts):
        for tmp in sorted(root.rglob(".*.tmp")) if root.is_dir() else []:
            if now - tmp.stat().st_mtime > TEMP_AGE_S:
                out.append((tmp, "temp file of a write that was killed"))
        for damaged in sorted(root.rglob("*.damaged")) if root.is_dir() else []:
            out.append((damaged, "damaged file set aside by an earlier run"))
    for lock in sorted((artifacts / "locks").glob("*.lock")):
        if lock.stem not in kept | needed_cells:
            out.append((lock, "lock of a cell that is gone"))
    return out


def _no_scheduler(job_ids: Iterable[str]):  # clean never asks SLURM: queued cells are kept
    from benchmark.status import SchedulerView

    return SchedulerView(jobs={}, source="none", complete=False, calls=0,
                         error="not queried by clean")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.clean",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--grid", action="append", required=True,
                    help="a grid whose cells are kept (repeat for several)")
    ap.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    args = ap.parse_args(argv)
    try:
        items = removable(args.grid)
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = 0
    for path, why in items:
        size = _size(path)
        total += size
        print(f"{'would remove' if args.dry_run else 'removed'} {path} ({size / 1e6:.1f} MB): "
              f"{why}")
        if not args.dry_run:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    verb = "would free" if args.dry_run else "freed"
    print(f"{len(items)} item(s); {verb} {total / 1e6:.1f} MB")
    return 0

if __name__ == "__main__":
    sys.exit(main())
