"""python -m benchmark.run --grid NAME [--executor local|slurm] [--dry-run] ...

Expands the grid, validates everything (specs, splits, class lists, the SLURM profile)
before running or submitting anything, listing every problem in one pass, prepares
generated datasets the grid asks for, then runs the cells that are not done. Finished cells
are never recomputed. A grid other than the committed demo writes into runs/<grid>/ unless
--root or $BENCH_RESULTS says where.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmark.commandline import add_grid_selection, add_root, parser
from benchmark.errors import BenchmarkError, DataError, Interrupted
from benchmark.grid import Grid, grid_path, load_grid
from benchmark.runtime import interrupt_on_sigterm
from benchmark.spec import RunSpec
from benchmark.store.files import rooted, work_root

EXAMPLE = ("python -m benchmark.run --grid demo --dry-run --set schedule.iterations=10 "
           "--only recipe=ft|dp")
EXITS = ("0 done (dry run: nothing missing); 1 a cell failed, or (dry run) inputs missing; "
         "2 invalid grid, profile or arguments (every problem listed); 130 interrupted")


def prepare_generated(names: tuple[str, ...], workers: int) -> None:
    """Build (or verify) the generated datasets a grid names; complete splits are skipped."""
    from benchmark.prepare import main as prepare_main

    for name in names:
        if prepare_main([name, "--workers", str(workers)]) != 0:
            raise BenchmarkError(f"preparing dataset {name!r} failed (see above)")


def plan(grid: Grid) -> list[tuple[RunSpec, str]]:
    """Cells in run order — runs other cells start from first, cells that train nothing (a
    WiSE-FT mix) last, where they fill the workers' tail — with their state (done / running /
    pending / failed / unsubmitted; one scheduler query at most)."""
    from benchmark.recipes import get_recipe, parent_of
    from benchmark.status import cell_states

    cells = grid.cells()
    parents = {p.fingerprint for s in cells if (p := parent_of(s)) is not None}
    ordered = sorted(cells, key=lambda s: (s.fingerprint not in parents,
                                           not get_recipe(s.recipe).trains))
    states = {c.fingerprint: c.state for c in cell_states([s.fingerprint for s in ordered])}
    return [(s, states[s.fingerprint]) for s in ordered]


def print_plan(grid: Grid, cells: list[tuple[RunSpec, str]], file=None) -> None:
    from benchmark.recipes import parent_of

    print(f"grid {grid.title!r} ({grid.path}): {len(cells)} cells", file=file)
    for spec, state in cells:
        p = parent_of(spec)
        parent = f"  from {p.fingerprint}" if p is not None else ""
        print(
            f"  {state:6s} {spec.fingerprint}  {spec.family:8s} {spec.backbone.label:28s} "
            f"{spec.recipe.label:6s} seed {spec.seed}  {len(spec.eval_splits)} eval splits{parent}",
            file=file,
        )


def main(argv: list[str] | None = None) -> int:
    ap = parser("python -m benchmark.run", __doc__, example=EXAMPLE, exits=EXITS)
    ap.add_argument("--grid", required=True, help="grid name (benchmark/grids/NAME.yaml) or path")
    add_grid_selection(ap)
    add_root(ap)
    ap.add_argument("--executor", choices=("local", "slurm"), default="local")
    ap.add_argument("--profile", help="SLURM cluster profile (slurm/NAME.yaml)")
    ap.add_argument("--workers", type=int, default=1, help="local: cells run in parallel")
    ap.add_argument(
        "--threads", type=int, help="local: torch threads per cell (default: cores / workers)"
    )
    ap.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    ap.add_argument("--retry-failed", action="store_true", help="rerun cells that failed")
    ap.add_argument(
        "--verify", action="store_true",
        help="hash every image again (default: only images changed since their last check)",
    )
    ap.add_argument("--no-report", action="store_true", help="do not regenerate the report")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    from benchmark.smoke.cli import add_arguments as add_smoke_arguments

    add_smoke_arguments(ap)
    args = ap.parse_args(argv)
    interrupt_on_sigterm()
    try:
        if args.smoke:  # a rehearsal in a scratch root of its own (benchmark.smoke)
            return _run(args)
        root = work_root(args.root, grid_path(args.grid), variant=bool(args.overrides))
        if root is not None:
            why = "--root" if args.root else (
                f"grid {args.grid!r} is not the committed demo grid as it is; --root DIR "
                "chooses another")
            print(f"results and artifacts in {root}/ ({why})", flush=True)
        with rooted(root):
            return _run(args)
    except BenchmarkError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Interrupted) as e:
        why = str(e) if isinstance(e, Interrupted) else "interrupted"
        print(f"{why}; finished work is kept: rerun the same command to resume", file=sys.stderr)
        return 130


def _load(args: argparse.Namespace, **kwargs: bool) -> Grid:
    return load_grid(args.grid, overrides=args.overrides, only=args.only, **kwargs)


def preflight(args: argparse.Namespace) -> Grid:
    """Every check that needs no data and no weight file, all problems at once, before any
    work: the SLURM profile (its file and, where the cluster answers, its partition) and the
    grid itself (keys, schedule, backbones, recipes and their parameters, --set, --only)."""
    from benchmark.grid import GridErrors

    problems: list[str] = []
    if args.executor == "slurm" or args.profile:
        from benchmark.profiles import profile_problems

        problems += profile_problems(args.profile, cluster=None if args.dry_run else True)
    grid = None
    try:
        grid = _load(args, resolve_data=False, check_weights=False)
    except BenchmarkError as e:
        problems += str(e).splitlines()
    if problems or grid is None:
        raise GridErrors(problems) if len(problems) > 1 else BenchmarkError(problems[0])
    return grid


def _run(args: argparse.Namespace) -> int:
    if args.smoke:  # a rehearsal in a scratch root of its own (benchmark.smoke)
        from benchmark.smoke.cli import main as smoke_main

        return smoke_main(args)
    t0 = time.time()
    preflight(args)
    if args.dry_run:
        return _dry_run(args)
    grid = _load(args, resolve_data=False)  # the weights files exist and fit
    if grid.prepare:
        prepare_generated(grid.prepare, max(1, args.workers))
    grid = _load(args)
    cells = plan(grid)
    print_plan(grid, cells)
    _verify(cells, args.verify)
    runnable = {"unsubmitted", "failed"} if args.retry_failed else {"unsubmitted"}
    todo = [spec for spec, state in cells if state in runnable]
    queued = sum(state in ("pending", "running") for _, state in cells)
    if queued:
        print(f"{queued} cell(s) queued or running elsewhere: left to them")
    if args.executor == "slurm":
        from benchmark.slurm import submit_grid

        return submit_grid(grid, todo, profile=args.profile, retry_failed=args.retry_failed)
    from benchmark.executors import LocalExecutor

    outcome = LocalExecutor(
        workers=args.workers, progress=not args.quiet, threads=args.threads,
        reproducible_cpu=grid.reproducible_cpu,
        total=len(cells), finished=sum(state == "done" for _, state in cells),
    ).execute(todo, grid.name)
    print(
        f"{len(outcome.done)} cell(s) done, {len(outcome.failed)} failed, "
        f"{len(cells) - len(todo)} already finished or left to others "
        f"({time.time() - t0:.0f} s)"
    )
    if not args.no_report:
        from benchmark.report import main as report_main

        if report_main([]) != 0:
            return 2
    return _failed_summary(grid, args)


def _verify(cells: list[tuple[RunSpec, str]], full: bool) -> None:
    from benchmark.data.verify import verify_splits

    splits = sorted({s for spec, _ in cells for s in spec.all_splits})
    checked, hashed = verify_splits(splits, full=full)
    print(f"verified {checked} image files of {len(splits)} splits ({hashed} hashed)")


def _dry_run(args: argparse.Namespace) -> int:
    """Every input the grid lacks, in one listing (weights files, prepared splits: status,
    size, the command that fetches each), then the plan of cells. Exit 1 when anything is
    missing or wrong; otherwise the full validation and image check of a run."""
    from benchmark.acquire.inputs import fetch_commands, grid_inputs, print_inputs

    grid = _load(args, resolve_data=False, check_weights=False)
    inputs = grid_inputs(grid, args.grid)
    blocking = [i for i in inputs if i.blocking]
    print(f"inputs of grid {grid.name!r}: {len(inputs) - len(blocking)} of {len(inputs)} "
          f"present")
    print_inputs(inputs)
    data_ok = not blocking
    if not any(i.kind == "weights" for i in blocking):
        grid = _load(args, resolve_data=False)  # the weights fit their backbones
    if data_ok:
        try:
            grid = _load(args)
        except DataError as e:  # a generated dataset the run makes first
            data_ok = False
            print(f"note: {e}")
    if not data_ok:
        print("(data missing: fingerprints below exclude dataset content)")
    cells = plan(grid)
    print_plan(grid, cells)
    if data_ok:
        _verify(cells, args.verify)
    if blocking:
        print(f"{len(blocking)} of {len(inputs)} input(s) missing or wrong (listed above); "
              f"these commands fetch them:")
        for command in fetch_commands(inputs, args.grid):
            print(f"  {command}")
        print(f"error: grid {grid.name!r} lacks {len(blocking)} input(s); see the listing",
              file=sys.stderr)
        return 1
    return 0


def _failed_summary(grid: Grid, args: argparse.Namespace) -> int:
    """Exit status 1, and one line naming them, while any cell of the grid is failed."""
    failed = [spec for spec, state in plan(grid) if state == "failed"]
    if not failed:
        return 0
    names = "; ".join(f"{s.fingerprint} ({s.label})" for s in failed[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    hint = "" if args.retry_failed else " — rerun them with --retry-failed"
    root = f" --root {args.root}" if args.root else ""
    print(f"{len(failed)} cell(s) of grid {grid.name!r} failed: {names}{more}"
          f" (python -m benchmark.status --grid {args.grid}{root}){hint}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
