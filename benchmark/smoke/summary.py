"""What a smoke test prints at the end: the per-kind table and the real grid's cost sheet."""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

from benchmark.smoke.cell import KindResult
from benchmark.smoke.cost import format_cost, grid_cost
from benchmark.smoke.kinds import KindGroup
from benchmark.spec import RunSpec


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def ran_on(results: list[KindResult]) -> str:
    """The device the kinds were measured on: the nodes' for a smoke on SLURM, else this
    machine's."""
    nodes = sorted({r.device for r in results if r.device})
    return " / ".join(nodes) if nodes else device_name()


def kind_table(groups: dict[str, int], results: list[KindResult]) -> str:
    rows = [("kind", "cells", "s/iter", "img/s", "peak RSS", "trained params", "eval s/img",
             "status")]
    for r in results:
        batch = _batch(r.kind)
        rows.append((
            r.kind, str(groups.get(r.kind, 1)),
            f"{r.s_per_iter:.2f}" if r.s_per_iter is not None else "-",
            f"{batch / r.s_per_iter:.2f}" if r.s_per_iter else "-",
            f"{r.peak_rss_mb:,.0f} MB" if r.peak_rss_mb is not None else "n/a",
            f"{r.trained_params:,}" if r.trained_params is not None else "-",
            f"{r.s_per_image:.2f}" if r.s_per_image is not None else "-",
            "ok" if r.ok else f"FAILED at {r.stage}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                     for row in rows)


def _batch(label: str) -> int:
    shape = label.rsplit("/", 2)[-2]  # ".../b16@640-800/800<=1333"
    return int(shape[1:shape.index("@")]) if shape.startswith("b") and "@" in shape else 1


def split_images(real_data: Path):
    """A split's image count: the prepared one's where present, else the published one."""
    from benchmark.data.sources import EXPECTED_IMAGES
    from benchmark.data.split import MANIFEST, split_dir

    def count(name: str) -> int | None:
        manifest = split_dir(name, real_data) / MANIFEST
        if manifest.is_file():
            import json

            return int(json.loads(manifest.read_text())["num_images"])
        return EXPECTED_IMAGES.get(name, (None, ""))[0]

    return count


def print_summary(grid: str, cells: list[RunSpec], groups: list[KindGroup],
                  results: list[KindResult], args: argparse.Namespace, real_data: Path,
                  root: Path, wall_s: float) -> int:
    sizes = {g.kind.label: len(g.cells) for g in groups}
    device = ran_on(results)
    print(f"\nper kind (N = {args.smoke_iters if not str(args.smoke).isdigit() else args.smoke} "
          f"iterations; {device}; timings on a shared machine are rough):")
    print(kind_table(sizes, results))
    measured = {r.kind: r for r in results if r.ok}
    sheet = grid_cost(cells, measured, split_images(real_data), args.img_per_s)
    print()
    print(format_cost(grid, sheet, device, args.img_per_s))
    shrunk = [what for what, on in ((f"input sizes × {args.smoke_scale:g}",
                                     args.smoke_scale != 1),
                                    (f"training batch <= {args.smoke_batch}",
                                     bool(args.smoke_batch))) if on]
    if shrunk and args.img_per_s is None:
        print(f"  (measured with {' and '.join(shrunk)}: the device-hours above are a floor, "
              "not the grid's cost; --img-per-s costs it at a throughput you know)")
    failed = [r for r in results if not r.ok]
    board = root / "BENCHMARKS.md"
    print(f"\nsmoke of {grid!r}: {len(results) - len(failed)} of {len(results)} kind(s) passed in "
          f"{wall_s:.0f} s; leaderboard: {board if board.is_file() else 'none'}"
          + (f"; {len(failed)} failed (see the FAILED lines above)" if failed else ""))
    return 1 if failed else 0
