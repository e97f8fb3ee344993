"""``python -m benchmark.weights``: what the weights catalogue knows, which of its files are
in the weights folder, and checkpoint conversion. Nothing is ever downloaded.

* ``list`` — every catalogue entry: architecture, converter, pixel statistics, file, URL.
* ``check [--grid G]`` — each file (all entries, or the weights a grid names): present,
  missing (with the URL to fetch it from and the path to put it at) or wrong hash (both
  hashes named). Exit 1 when any file is missing or wrong.
* ``convert WEIGHTS --backbone NAME --out FILE`` — load a checkpoint (catalogue name or
  path) into the backbone with its converter and write the body's state dict, with a report
  of every key mapped, missing, unexpected and ignored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError
from benchmark.models.backbones import build_body, file_sha256, weights_path
from benchmark.models.weights import catalogue
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


def check_rows(pairs: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """One row per file: weights, backbone, path, status (ok | unverified | missing |
    wrong hash | unknown), detail."""
    if pairs is None:
        pairs = [(e.architecture, e.name) for e in catalogue.entries()]
    rows = []
    for backbone, weights in pairs:
        path = weights_path(weights)
        if path is None:
            continue
        entry = catalogue.lookup(weights)
        row = {"weights": weights, "backbone": backbone, "path": str(path)}
        if entry is None and catalogue.looks_like_name(weights):
            rows.append({**row, "status": "unknown",
                         "detail": f"not in the catalogue (known: {', '.join(catalogue.names())})"})
            continue
        if not path.is_file():
            detail = f"fetch {entry.url} and put it at {path}" if entry else f"put it at {path}"
            rows.append({**row, "status": "missing", "detail": detail})
            continue
        digest = file_sha256(path)
        if entry is None:
            known = catalogue.by_sha256(digest)
            rows.append({**row, "status": "ok" if known else "unverified",
                         "detail": f"sha256 {digest}" + (f" = catalogue {known.name}" if known
                                                          else " (not in the catalogue)")})
        elif catalogue.hash_matches(entry, digest) is None:
            rows.append({**row, "status": "unverified",
                         "detail": f"sha256 {digest}; the publisher gives no hash ({entry.url})"})
        elif catalogue.hash_matches(entry, digest):
            rows.append({**row, "status": "ok", "detail": f"sha256 {digest}"})
        else:
            rows.append({**row, "status": "wrong hash",
                         "detail": f"sha256 {digest}, expected {entry.sha256} ({entry.url})"})
    return rows


def _list() -> int:
    print(f"weights folder: {weights_root()} ($BENCH_WEIGHTS)")
    for e in catalogue.entries():
        pub = f"  rows: {', '.join(e.publication)}" if e.publication else ""
        print(f"{e.name:30} {e.architecture:20} {e.converter:14} {e.pixels:13} {e.file}{pub}")
        print(f"{'':30} {e.url}  [{e.licence}]")
    return 0


def _check(grid: str | None) -> int:
    rows = check_rows(_grid_weights(grid) if grid else None)
    for r in rows:
        print(f"{r['status']:10} {r['weights']:30} {r['backbone']:20} {r['detail']}")
    bad = [r for r in rows if r["status"] in ("missing", "wrong hash", "unknown")]
    print(f"{len(rows) - len(bad)} of {len(rows)} files usable; folder {weights_root()}")
    return 1 if bad else 0


def _convert(weights: str, backbone: str, out: Path, partial: bool) -> int:
    import torch

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
    p = argparse.ArgumentParser(prog="python -m benchmark.weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the catalogue")
    c = sub.add_parser("check", help="which catalogue files are present and intact")
    c.add_argument("--grid", help="only the weights this grid names")
    v = sub.add_parser("convert", help="convert a checkpoint and report its keys")
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
        return _convert(args.weights, args.backbone, args.out, args.partial)
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
