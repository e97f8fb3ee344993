"""``python -m benchmark.weights``: what the weights catalogue knows, which of its files are
in the weights folder, fetching them, and checkpoint conversion. Only ``fetch`` touches the
network.

* ``list`` — every catalogue entry: architecture, converter, pixel statistics, file, URL.
* ``check [--grid G]`` — each file (all entries, or the weights a grid names): present,
  missing (with the URL to fetch it from and the path to put it at) or wrong hash (both
  hashes named). Exit 1 when any file is missing or wrong.
* ``fetch --grid G [--only NAME]`` — download every catalogue file the grid names that is
  missing or of the wrong hash into the weights folder (resumable; sha256 verified where the
  catalogue has one, "unverified" said where the publisher gives none; Google Drive's
  confirmation page followed), load each through its converter, then ``check`` the grid.
  ``$BENCH_MIRROR`` / ``--mirror URL``: fetch ``<mirror>/<file>`` instead.
* ``convert WEIGHTS --backbone NAME --out FILE`` — load a checkpoint (catalogue name or
  path) into the backbone with its converter and write the body's state dict, with a report
  of every key mapped, missing, unexpected and ignored.
"""
from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError, ConfigError
from benchmark.models.checkpoints import catalogue
from benchmark.store import weights_root


def _grid_weights(name: str) -> list[tuple[str, str]]:
    """(backbone, weights) pairs a grid names, read without validating the files."""
    from benchmark.grid import _read_yaml, grid_path

    doc = _read_yaml(grid_path(name))
    pairs: list[tuple[str, str]] = []
    for exp in [doc, *(doc.get("experiments") or [])]:
        for b in exp.get("backbones") or []:
            pair = (str(b.get("name")), str(b.get("weights", "imagenet")))
            if pair not in pairs:
                pairs.append(pair)
    return pairs


def _list() -> int:
    print(f"weights folder: {weights_root()} ($BENCH_WEIGHTS)")
    for e in catalogue.entries():
        pub = f"  rows: {', '.join(e.publication)}" if e.publication else ""
        print(f"{e.name:30} {e.architecture:20} {e.converter:14} {e.pixels:13} {e.file}{pub}")
        print(f"{'':30} {e.url}  [{e.licence}]")
    return 0


def _check(grid: str | None) -> int:
    from benchmark.acquire.inputs import check_rows

    return _report(check_rows(_grid_weights(grid) if grid else None))


def _report(rows: list[dict[str, Any]]) -> int:
    """Print check rows; 1 when any file is missing, wrong or unknown."""
    for r in rows:
        print(f"{r['status']:10} {r['weights']:30} {r['backbone']:20} {r['detail']}")
    bad = [r for r in rows if r["status"] in ("missing", "wrong hash", "unknown")]
    print(f"{len(rows) - len(bad)} of {len(rows)} files usable; folder {weights_root()}")
    return 1 if bad else 0


def _fetch(grid: str, only: list[str], mirror: str | None, timeout: float,
           progress: bool) -> int:
    from benchmark.acquire.checkpoints import fetch_weights

    pairs = _grid_weights(grid)
    unknown = [n for n in only if n not in {w for _, w in pairs}]
    if unknown:
        raise ConfigError(f"--only {', '.join(unknown)}: not among the weights grid {grid!r} "
                          f"names ({', '.join(w for _, w in pairs)})")
    chosen = [p for p in pairs if not only or p[1] in only]
    failed = fetch_weights(chosen, mirror=mirror, timeout=timeout, progress=progress)
    print(f"weights check --grid {grid}" + (f" (only {', '.join(only)})" if only else "") + ":")
    from benchmark.acquire.inputs import check_rows

    return max(_report(check_rows(chosen)), 1 if failed else 0)


def _convert(weights: str, backbone: str, out: Path, partial: bool) -> int:
    import torch

    from benchmark.models.backbones import build_body

    body = build_body(backbone, weights, 0, strict=not partial)
    report = body.weights_report
    torch.save(body.state_dict(), out)
    if report is not None:
        for title, keys in (("mapped", report.mapped), ("missing", report.missing),
                            ("unexpected", report.unexpected), ("ignored (classifier)",
                                                                report.ignored)):
            print(f"{title}: {len(keys)}")
            for k in keys:
                print(f"  {k}")
    print(f"wrote {out} ({len(body.state_dict())} tensors, body-relative names)")
    return 0


def main(argv: list[str] | None = None) -> int:
    from benchmark.commandline import HelpFormatter, parser

    p = parser("python -m benchmark.weights", __doc__,
               example="python -m benchmark.weights fetch --grid mind_back_pascal",
               exits="0 every file present and verified (or done); 1 a file missing, wrong or "
                     "unverifiable; 2 bad input or a failed download")
    sub = p.add_subparsers(dest="cmd", required=True)
    add = partial(sub.add_parser, formatter_class=HelpFormatter)
    add("list", help="the catalogue")
    c = add("check", help="which catalogue files are present and intact")
    c.add_argument("--grid", help="only the weights this grid names")
    f = add("fetch", help="download the files a grid needs, verified")
    f.add_argument("--grid", required=True, help="the grid whose weights to fetch")
    f.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="only this catalogue name (repeatable)")
    f.add_argument("--mirror", help="base URL serving every file by its name "
                   "(default $BENCH_MIRROR; else each entry's own URL)")
    f.add_argument("--timeout", type=float, default=60.0,
                   help="seconds without data before giving up")
    f.add_argument("--quiet", dest="progress", action="store_false", help="no progress bar")
    v = add("convert", help="convert a checkpoint and report its keys")
    v.add_argument("weights", help="catalogue name or checkpoint path")
    v.add_argument("--backbone", required=True, help="registry name of the architecture")
    v.add_argument("--out", type=Path, required=True)
    v.add_argument("--partial", action="store_true", help="accept missing keys (strict: false)")
    args = p.parse_args(argv)
    try:
        if args.cmd == "list":
            return _list()
        if args.cmd == "check":
            return _check(args.grid)
        if args.cmd == "fetch":
            return _fetch(args.grid, args.only, args.mirror, args.timeout, args.progress)
        return _convert(args.weights, args.backbone, args.out, args.partial)
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
