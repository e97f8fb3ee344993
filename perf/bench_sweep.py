"""The evaluation sweep of one demo cell, today's split-after-split loop against the one-pass
sweep (``pipeline.evaluate_stage``: images decoded and corrupted in loader workers while the
model predicts, each split scored in a process of its own), in the same run.

    python perf/bench_sweep.py [--workers 2] [--splits 19] [--on-the-fly] [--repeat 1]
                                     [--threads 0] [--json PATH]
    python perf/bench_sweep.py --coco-size N [--severity 3] [--corruptions benchmark]
                                     [--workers 2] [--on-the-fly] [--test-size 800]

Both sides predict the demo grid's first cell (untrained, seeded: the checkpoint's weights
do not change the work but for the number of detections) over its eval splits, write the
predictions and metrics, and must give identical predictions (checked). ``--on-the-fly``
reads a data root without the materialised ``-C`` splits, so each corruption is computed
from the base split's images, as COCO-C is when it is not materialised. Prints the wall
time of each side, their ratio and the images per second. Writes only to a temp folder.

``--coco-size N`` checks the COCO-C sweep at one severity on a small set instead: the
``coco_c`` grid's first cell (Faster R-CNN FPN, ResNet-50 with untrained weights, test size
800, eval batch 8) over N photo-like 480x640 JPEGs (COCO's size and format) with 7 random
boxes of 80 classes each, and their copies under ``--corruptions`` at ``--severity``,
materialised first (timed apart) or ``--on-the-fly``. The one-pass sweep alone is timed,
and on one image before and after it: the smaller of those, the fixed cost (model load,
worker start), is taken out of the steady rate. ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "perf"))

from _throughput import write_json  # noqa: E402


def _data_root(on_the_fly: bool, tmp: Path) -> Path:
    from benchmark.store.files import data_root

    root = data_root()
    if not on_the_fly:
        return root
    view = tmp / "data"  # the base splits only: every -C split is corrupted on the fly
    view.mkdir()
    for split in root.iterdir():
        if "-C" not in split.name:
            (view / split.name).symlink_to(split.resolve())
    return view


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="loader workers of the new sweep")
    ap.add_argument("--splits", type=int, default=0, help="only the first N eval splits")
    ap.add_argument("--on-the-fly", action="store_true", help="corrupt from the base split")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--coco-size", type=int, default=0, metavar="N",
                    help="the COCO-C cell on N COCO-sized images at one severity instead")
    ap.add_argument("--severity", type=int, default=3, help="with --coco-size")
    ap.add_argument("--corruptions", default="benchmark", help="with --coco-size")
    ap.add_argument("--test-size", type=int, default=0,
                    help="with --coco-size: instead of the grid's 800 (a quick CPU check)")
    ap.add_argument("--json", default="", metavar="PATH", help="also write the results here")
    args = ap.parse_args()
    if args.coco_size:
        coco_check(args)
        return

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["BENCH_DATA"] = str(_data_root(args.on_the_fly, tmp))
        os.environ["BENCH_LOADER_WORKERS"] = str(args.workers)
        import torch

        from benchmark.data.labels import LabelMap
        from benchmark.data.split import load_split, resolve_split
        from benchmark.evaluation import evaluate_split
        from benchmark.grid import load_grid
        from benchmark.inference import predict_split
        from benchmark.pipeline import evaluate_stage
        from benchmark.store import TrainingDir
        from benchmark.training import checkpoint

        if args.threads:
            torch.set_num_threads(args.threads)
        spec = load_grid("demo").runs[0]
        names = spec.eval_splits[: args.splits or None]
        if args.splits:  # a cell of those splits (no corruption block: the -C splits as OOD)
            spec = dataclasses.replace(spec, corruption=None, ood_splits=tuple(names[1:]))
        labels = LabelMap(load_split(spec.train_split))
        torch.manual_seed(0)
        ckpt = tmp / "model.pt"
        ckpt.write_bytes(checkpoint.to_bytes(
            {"model": checkpoint.load_detector(spec, len(labels), None).state_dict()}))
        images = sum(len(resolve_split(n).split.coco["images"]) for n in names)

        def old(root: Path) -> float:
            """Today's evaluate_stage loop: one split after another, all in this process."""
            os.environ["BENCH_ARTIFACTS"] = str(root)
            out = TrainingDir(spec.train_fingerprint).evaluation(spec.eval_fingerprint)
            t0 = time.perf_counter()
            model = checkpoint.load_detector(spec, len(labels), ckpt)
            for name in names:
                split = resolve_split(name)
                preds = predict_split(model, split, labels, spec.schedule.eval_batch_size,
                                      progress=False)
                out.write_predictions(name, preds)
                out.write_metrics(name, evaluate_split(spec, name, split.split.annotation_path,
                                                       preds))
            return time.perf_counter() - t0

        def new(root: Path) -> float:
            os.environ["BENCH_ARTIFACTS"] = str(root)
            t0 = time.perf_counter()
            evaluate_stage(spec, ckpt, progress=False)
            return time.perf_counter() - t0

        times: dict[str, list[float]] = {"old": [], "new": []}
        for r in range(args.repeat):
            for side, fn in (("old", old), ("new", new)):
                times[side].append(fn(tmp / f"{side}{r}"))
        for name in names:  # the same predictions, bit for bit
            rel = Path("train") / spec.train_fingerprint / "eval" / spec.eval_fingerprint
            pa = tmp / "old0" / rel / "predictions" / f"{name}.json"
            pb = tmp / "new0" / rel / "predictions" / f"{name}.json"
            assert pa.read_bytes() == pb.read_bytes(), name

    t_old, t_new = sorted(times["old"])[len(times["old"]) // 2], sorted(times["new"])[
        len(times["new"]) // 2]
    source = "corrupted on the fly" if args.on_the_fly else "materialised -C splits"
    print(f"demo cell {spec.label}: {len(names)} splits, {images} images ({source}), "
          f"batch {spec.schedule.eval_batch_size}, torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print("| sweep | wall s | images/s |")
    print("|---|---|---|")
    print(f"| split after split, in process (before) | {t_old:.1f} | {images / t_old:.1f} |")
    how = (f"{args.workers} loader workers + scoring process" if args.workers
           else "in process (no workers: the CPU default)")
    print(f"| one pass, {how} | {t_new:.1f} | "
          f"{images / t_new:.1f} |")
    print(f"ratio (before / one pass): {t_old / t_new:.2f}x; predictions identical")
    if args.json:
        write_json(args.json, {
            "mode": "demo", "cell": spec.label, "splits": len(names), "images": images,
            "source": source, "workers": args.workers, "before_s": t_old, "one_pass_s": t_new,
            "before_img_s": images / t_old, "one_pass_img_s": images / t_new})


def coco_check(args: argparse.Namespace) -> None:
    """The one-pass sweep of the COCO-C cell over a small COCO-sized set (see the module)."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "data"
        os.environ["BENCH_DATA"] = str(root)
        os.environ["BENCH_LOADER_WORKERS"] = str(args.workers)
        import torch
        from bench_corrupt import make_source

        from benchmark.data.corrupt import build_corrupted_splits, corruption_names
        from benchmark.data.labels import LabelMap
        from benchmark.grid import load_grid
        from benchmark.pipeline import evaluate_stage
        from benchmark.training import checkpoint

        if args.threads:
            torch.set_num_threads(args.threads)
        grid = load_grid("coco_c", resolve_data=False, check_weights=False).runs[0]
        if args.test_size:
            size = grid.schedule
            grid = dataclasses.replace(grid, schedule=dataclasses.replace(
                size, test_size=args.test_size,
                max_size=round(args.test_size * size.max_size / size.test_size)))
        names = tuple(corruption_names(args.corruptions))
        order = grid.corruption.channel_order
        seconds: dict[str, list[float]] = {"one": [], "bench": []}
        images: dict[str, int] = {}
        build_s, cells = 0.0, {}
        # one image, the set, one image again: the first run also pays this process's
        # one-off costs (lazy imports, the first kernels), the fixed cost is the smaller
        for r, (base, n) in enumerate((("one", 1), ("bench", args.coco_size), ("one", 1))):
            spec = dataclasses.replace(
                grid, backbone=dataclasses.replace(grid.backbone, weights="none"),
                train_split=base, id_split=base, ood_splits=(),
                corruption=dataclasses.replace(grid.corruption, base=base, names=names,
                                               severities=(args.severity,)))
            cells[base] = spec
            ckpt = tmp / f"{base}.pt"
            if not ckpt.exists():
                source = make_source(root, n, 480, 640, name=base, classes=80, boxes=7)
                if not args.on_the_fly:
                    t0 = time.perf_counter()
                    build_corrupted_splits(source, names, [args.severity], root=root,
                                           workers=max(args.workers, 1), progress=False,
                                           channel_order=order)
                    build_s = time.perf_counter() - t0 if base == "bench" else build_s
                torch.manual_seed(0)
                ckpt.write_bytes(checkpoint.to_bytes({"model": checkpoint.load_detector(
                    spec, len(LabelMap(source)), None).state_dict()}))
            os.environ["BENCH_ARTIFACTS"] = str(tmp / f"artifacts{r}")
            t0 = time.perf_counter()
            evaluate_stage(spec, ckpt, progress=False)
            seconds[base].append(time.perf_counter() - t0)
            images[base] = n * len(spec.eval_splits)

    spec = cells["bench"]
    wall, fixed = seconds["bench"][0], min(seconds["one"])
    steady = ((images["bench"] - images["one"]) / (wall - fixed) if wall > fixed else None)
    source = "corrupted on the fly" if args.on_the_fly else "materialised -C splits"
    print(f"COCO-C check: {spec.label}, test size {spec.schedule.test_size}, eval batch "
          f"{spec.schedule.eval_batch_size}; {args.coco_size} images 480x640 x "
          f"{len(spec.eval_splits)} splits (clean + {len(names)} corrupted at severity "
          f"{args.severity}, {source}) = {images['bench']} images; {args.workers} loader "
          f"workers; device {'cuda' if torch.cuda.is_available() else 'cpu'}, "
          f"{os.cpu_count()} cores")
    if not args.on_the_fly:
        print(f"materialising the {len(names)} -C copies: {build_s:.1f} s")
    print(f"one-pass sweep: {wall:.1f} s ({images['bench'] / wall:.1f} img/s); on one image "
          f"{fixed:.1f} s (runs: {', '.join(f'{t:.1f}' for t in seconds['one'])}); steady "
          "rate without that fixed cost " + (f"{steady:.1f} img/s" if steady else
                                             "not measurable (the set is too small)"))
    if args.json:
        write_json(args.json, {
            "mode": "coco", "cell": spec.label, "test_size": spec.schedule.test_size,
            "eval_batch": spec.schedule.eval_batch_size, "base_images": args.coco_size,
            "splits": len(spec.eval_splits), "severity": args.severity,
            "corruptions": list(names), "on_the_fly": args.on_the_fly,
            "workers": args.workers, "images": images["bench"], "build_s": build_s,
            "wall_s": wall, "img_s": images["bench"] / wall, "fixed_s": fixed,
            "fixed_runs_s": seconds["one"], "steady_img_s": steady})

if __name__ == "__main__":
    main()
