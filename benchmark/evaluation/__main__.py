"""``python -m benchmark.evaluation``: score saved COCO-format detections from the command line.

The scoring itself lives in :mod:`benchmark.evaluation`; this module is the CLI only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError
from benchmark.evaluation import PROTOCOLS, evaluate_predictions
from benchmark.evaluation.coco import BACKENDS, COCO_KEYS
from benchmark.store import atomic_write_json


def format_summary(result: dict[str, Any]) -> str:
    lines = [f"{k:<6} {result[k]:.3f}" for k in COCO_KEYS if k in result]
    if "per_class" in result:
        lines.append("per-class AP@[.5:.95] (AP50):")
        ap50 = result.get("per_class_ap50", {})
        for name, ap in result["per_class"].items():
            if ap is None:
                lines.append(f"  {name:<16} -      (no ground truth)")
            else:
                lines.append(f"  {name:<16} {ap:.3f}  ({ap50.get(name, float('nan')):.3f})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.evaluation", description="Evaluate COCO-format detections."
    )
    parser.add_argument("--gt", required=True, type=Path, help="COCO ground-truth JSON")
    parser.add_argument("--predictions", required=True, type=Path, help="COCO results JSON")
    parser.add_argument("--json", type=Path, help="write the summary here (atomically)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="coco")
    parser.add_argument("--backend", choices=BACKENDS, default="pycocotools",
                        help="COCO evaluator: pycocotools (reference) or faster_coco_eval")
    args = parser.parse_args(argv)
    try:
        result = evaluate_predictions(args.gt, args.predictions, args.protocol, args.backend)
        print(format_summary(result))
        if args.json is not None:
            atomic_write_json(args.json, result)
    except (BenchmarkError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
