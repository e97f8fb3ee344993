"""``python -m benchmark.run --grid G --smoke [N|all]``: rehearse a grid at its true scale.

One cell per kind (:mod:`.kinds`; every cell with ``all``) runs through the real pipeline
for N iterations (default 2) at the grid's input sizes and per-device batch, evaluates K
images of every split (corrupted ones on the fly) and is recorded, all in a scratch root of
its own (default ``runs/smoke/<grid>/``, never ``results/``); the leaderboard is rendered
there. Absent datasets and weights are replaced by stand-ins (:mod:`.inputs`). Each kind
runs in a process of its own, so its peak resident memory is its own; with ``--executor
slurm --profile P`` the kinds run as one job array on the cluster (:mod:`.slurm_array`)
and this command waits for it (``--dry-run``: the profile checked, nothing submitted). A
failure is one line naming the kind and the stage (convert, weights, train, evaluate;
``slurm`` for a job that ended before its first stage); exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

#: environment variables the smoke sets for its own roots (restored afterwards)
ROOT_ENV = ("BENCH_DATA", "BENCH_RESULTS", "BENCH_ARTIFACTS", "BENCH_SMOKE",
            "BENCH_LOADER_WORKERS")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--smoke", nargs="?", const="kinds", metavar="N|all",
                    help="rehearse the grid: one cell per kind (all: every cell) for N "
                         "iterations (default 2) into runs/smoke/<grid>/, then a cost sheet "
                         "(--executor slurm: the kinds as one job array, waited for)")
    ap.add_argument("--smoke-iters", type=int, default=2, metavar="N",
                    help="smoke: training iterations per cell (default 2)")
    ap.add_argument("--smoke-images", type=int, default=2, metavar="K",
                    help="smoke: images evaluated per split (default 2)")
    ap.add_argument("--smoke-scale", type=float, default=1.0, metavar="F",
                    help="smoke: input sizes and stand-in images × F (default 1: true size)")
    ap.add_argument("--smoke-batch", type=int, default=None, metavar="B",
                    help="smoke: cap the per-device training batch at B (default: the grid's; "
                         "CI's rehearsal of every kind uses 2)")
    ap.add_argument("--smoke-root", type=Path, default=None,
                    help="smoke: scratch root (default runs/smoke); the grid's is ROOT/<grid>")
    ap.add_argument("--smoke-inline", action="store_true",
                    help="smoke: run the kinds in this process (faster; no per-kind peak RSS)")
    ap.add_argument("--img-per-s", type=float, default=None,
                    help="smoke: cost the real grid at this training throughput instead of "
                         "the one measured here")


def smoke_schedule(schedule, iterations: int, scale: float, batch: int | None = None):
    """The real schedule at ``iterations`` (checkpointing once, at the end), with at most one
    RGN / importance batch and, where asked (CI), input sizes × ``scale`` and the training
    batch capped at ``batch``."""
    def size(v: int) -> int:
        return max(64, round(v * scale / 32) * 32) if scale != 1 else v

    return replace(schedule, iterations=iterations, checkpoint_every=iterations,
                   batch_size=min(schedule.batch_size, batch or schedule.batch_size),
                   rgn_batches=min(schedule.rgn_batches, 1),
                   importance_batches=min(schedule.importance_batches, 1),
                   train_sizes=tuple(dict.fromkeys(size(v) for v in schedule.train_sizes)),
                   test_size=size(schedule.test_size), max_size=size(schedule.max_size))


def main(args: argparse.Namespace) -> int:
    from benchmark.grid import load_grid
    from benchmark.smoke.kinds import group_kinds
    from benchmark.store import REPO_ROOT, data_root, environment, weights_root

    iterations = int(args.smoke) if str(args.smoke).isdigit() else args.smoke_iters
    if args.smoke not in ("kinds", "all") and not str(args.smoke).isdigit():
        print(f"error: --smoke {args.smoke!r}: give N (iterations) or all", file=sys.stderr)
        return 2
    if (iterations < 1 or args.smoke_images < 1 or not 0 < args.smoke_scale <= 1
            or (args.smoke_batch is not None and args.smoke_batch < 1)):
        print("error: --smoke-iters, --smoke-images and --smoke-batch must be >= 1, "
              "--smoke-scale in (0, 1]", file=sys.stderr)
        return 2
    slurm = None
    if args.executor == "slurm":
        if args.smoke_inline:
            print("error: --smoke-inline runs the kinds here; it does not go with --executor "
                  "slurm", file=sys.stderr)
            return 2
        from benchmark.smoke.slurm_array import check_profile

        slurm = check_profile(args.profile, dry_run=args.dry_run)  # before any input
    t0 = time.monotonic()
    grid = load_grid(args.grid, resolve_data=False, check_weights=False,
                     overrides=args.overrides, only=args.only)
    cells = grid.cells()
    groups = group_kinds(cells)
    chosen = ([(g.kind.label, s) for g in groups for s in g.cells] if args.smoke == "all"
              else [(g.kind.label, g.representative) for g in groups])
    base = (Path(args.smoke_root) if args.smoke_root else REPO_ROOT / "runs" / "smoke").resolve()
    root = base / grid.name
    print(f"smoke of grid {grid.name!r}: {len(cells)} cells in {len(groups)} kinds; running "
          f"{len(chosen)} cell(s), {iterations} iteration(s) each, {args.smoke_images} image(s) "
          f"per split" + (f", sizes × {args.smoke_scale:g}" if args.smoke_scale != 1 else
                          ", true sizes")
          + (f", training batch <= {args.smoke_batch}" if args.smoke_batch else "")
          + f" -> {root}")
    if args.dry_run:  # what would run; no input is provided, nothing trains
        if slurm is not None:
            from benchmark.smoke.slurm_array import profile_line

            where = f"submit {len(chosen)} kind(s) as one SLURM job array on " \
                    f"{profile_line(slurm[0])}"
        else:
            where = f"run {len(chosen)} kind(s) here"
        print(f"dry run: would {where}, after providing their inputs under {root}:")
        for label, spec in chosen:
            print(f"  {label}  ({spec.fingerprint})")
        return 0
    if grid.prepare:
        print(f"note: generated datasets ({', '.join(grid.prepare)}) are read from "
              f"{data_root()} as they are; prepare them first")
    real_data, real_weights = data_root(), weights_root()
    env = {"BENCH_DATA": str(root / "data"), "BENCH_RESULTS": str(root / "results"),
           "BENCH_ARTIFACTS": str(root / "artifacts"), "BENCH_SMOKE": "1",
           "BENCH_LOADER_WORKERS": os.environ.get("BENCH_LOADER_WORKERS", "0")}
    with environment(env):
        (root / "results").mkdir(parents=True, exist_ok=True)
        from benchmark.report.records import SMOKE_ROOT_MARK

        (root / "results" / SMOKE_ROOT_MARK).write_text(
            "records here are smoke tests (python -m benchmark.run --smoke), never results\n")
        results = _rehearse(grid.name, chosen, args, iterations, root, base, real_data,
                            real_weights, slurm)
        ok = [r for r in results if r.ok]
        if ok and not args.no_report:
            from benchmark.report import main as report_main

            report_main(["--results", str(root / "results"), "--bootstrap", "0"])
    from benchmark.smoke.summary import print_summary

    return print_summary(grid.name, cells, groups, results, args, real_data, root,
                         time.monotonic() - t0)


def _rehearse(grid: str, chosen, args: argparse.Namespace, iterations: int, root: Path,
              base: Path, real_data: Path, real_weights: Path, slurm):
    """Provide the inputs, then run the kinds here (one process each) or, with ``slurm``
    (profile, tasks per array), as a job array; smoke.json holds the results."""
    from benchmark.smoke.cell import KindResult
    from benchmark.smoke.inputs import Inputs, needed_splits, provide_data, provide_weights

    inputs = Inputs()
    specs = [s for _, s in chosen]
    need = needed_splits(specs)
    provide_data(need, args.smoke_images, real=real_data, data=root / "data", raw=root / "raw",
                 scale=args.smoke_scale, log=print, out=inputs)
    provide_weights(specs, real=real_weights, folder=base / "weights", out=inputs)
    for line in inputs.substitutions:
        print(f"  {line}")
    results: dict[int, KindResult] = {}

    def finished(i: int, result: KindResult) -> None:
        results[i] = result
        _progress(len(results), len(chosen), result)

    todo = []  # (its place in chosen, label, smoke cell)
    for i, (label, spec) in enumerate(chosen):
        smoke, failure = _smoke_spec(spec, iterations, args.smoke_scale, args.smoke_batch,
                                      inputs)
        if failure is not None:
            finished(i, KindResult(label, spec.fingerprint, stage=failure[0], error=failure[1]))
        else:
            todo.append((i, label, smoke))
    entries = tuple(inputs.weights.values())
    if slurm is None:
        for i, label, smoke in todo:
            finished(i, _run(label, smoke, grid, entries, root / "logs",
                             isolated=not args.smoke_inline, progress=not args.quiet))
    elif todo:
        from benchmark.smoke.slurm_array import run_array

        profile, array_limit = slurm
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_array([(label, smoke) for _, label, smoke in todo], profile=profile,
                  array_limit=array_limit, grid=grid, entries=entries, logs=root / "logs",
                  folder=root / "slurm" / f"{stamp}-{os.getpid()}",
                  finished=lambda k, result: finished(todo[k][0], result))
    ordered = [results[i] for i in range(len(chosen))]
    (root / "smoke.json").write_text(json.dumps([asdict(r) for r in ordered], indent=1))
    return ordered


def _smoke_spec(spec, iterations: int, scale: float, batch: int | None, inputs):
    """The smoke cell of ``spec`` (its stand-in weights, its smoke schedule, the smoke data's
    fingerprints), or (stage, error) when an input it needs could not be provided."""
    from benchmark.errors import BenchmarkError
    from benchmark.grid import _check_categories
    from benchmark.spec import parse_corrupted_split_name

    for name in spec.all_splits:
        parsed = parse_corrupted_split_name(name)
        err = inputs.failed.get(parsed[0] if parsed else name)
        if err is not None:
            return None, (err.stage, str(err))
    if spec.backbone.weights in inputs.failed:
        return None, ("weights", str(inputs.failed[spec.backbone.weights]))
    backbone = spec.backbone
    if backbone.weights in inputs.weights:
        backbone = replace(backbone, weights=inputs.weights[backbone.weights].name)
    smoke = replace(spec, backbone=backbone,
                    schedule=smoke_schedule(spec.schedule, iterations, scale, batch))
    try:
        fps = _check_categories([smoke], None)
    except BenchmarkError as e:
        return None, ("validate", str(e))
    return replace(smoke, data=tuple((s, fps[s]) for s in smoke.all_splits)), None


def _progress(i: int, n: int, r) -> None:
    if not r.ok:  # the one line a failure gets
        log = f" (log: {r.log})" if r.log else ""
        print(f"smoke FAILED: {r.kind} at {r.stage}: {r.error}{log}", file=sys.stderr,
              flush=True)
        return
    it = f"{r.s_per_iter:.2f} s/iter" if r.s_per_iter is not None else "trains nothing"
    rss = f", peak RSS {r.peak_rss_mb:,.0f} MB" if r.peak_rss_mb is not None else ""
    print(f"[{i}/{n}] ok {r.kind}: {it}{rss}", flush=True)


def _run(label, spec, grid, entries, logs, *, isolated: bool, progress: bool):
    """The kind in a fresh process (forked from a server, so it starts fast and its peak RSS
    is its own), or in this process. A process that dies (the kernel's out-of-memory kill)
    fails its kind at the stage it had reached."""
    from benchmark.smoke.cell import KindResult, run_kind

    if not isolated:
        return run_kind(label, spec, grid, entries, logs, progress=progress, isolated=False)
    from multiprocessing import get_context

    ctx = get_context("forkserver")
    receive, send = ctx.Pipe(duplex=False)
    env = {k: v for k, v in os.environ.items() if k.startswith("BENCH_")}
    proc = ctx.Process(target=_isolated, args=(send, env, label, spec, grid, entries, logs))
    proc.start()
    send.close()
    stage = "train"
    try:
        while True:
            try:
                what, value = receive.recv()
            except EOFError:
                proc.join()
                return KindResult(label, spec.fingerprint, stage=stage,
                                  error=f"its process died (exit code {proc.exitcode}; "
                                        "-9: killed, e.g. out of memory)")
            if what == "result":
                return value
            stage = value
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join()


def _isolated(send, env, label, spec, grid, entries, logs) -> None:
    """In the kind's own process: the smoke's roots (a forked server keeps the environment
    it started with), then the kind; stages and the result go back through ``send``."""
    from benchmark.smoke.cell import run_kind

    for k in [k for k in os.environ if k.startswith("BENCH_")]:
        del os.environ[k]
    os.environ.update(env)
    result = run_kind(label, spec, grid, entries, logs, progress=False, isolated=True,
                      on_stage=lambda stage: send.send(("stage", stage)))
    send.send(("result", result))
