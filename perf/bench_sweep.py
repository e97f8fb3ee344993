"""The evaluation sweep of one demo cell, today's split-after-split loop against the one-pass
sweep (``pipeline.evaluate_stage``: images decoded and corrupted in loader workers while the
model predicts, each split scored in a process of its own), in the same run.

    python perf/bench_sweep.py [--workers 2] [--splits 19] [--on-the-fly] [--repeat 1]
                                     [--threads 0]

Both sides predict the demo grid's first cell (untrained, seeded: the checkpoint's weights
do not change the work but for the number of detections) over its eval splits, write the
predictions and metrics, and must give identical predictions (checked). ``--on-the-fly``
reads a data root without the materialised ``-C`` splits, so each corruption is computed
from the base split's images, as COCO-C is when it is not materialised. Prints the wall
time of each side, their ratio and the images per second. Writes only to a temp folder.
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
    args = ap.parse_args()

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


if __name__ == "__main__":
    main()
