"""What a grid needs on disk before it can run — every weights file and every prepared split —
each present, missing or wrong, with its size and the command that fetches it. Read from
disk only (no network, no image decoded), so ``run --dry-run`` lists everything at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.acquire.space import human
from benchmark.data.archives import DATASETS, family_of
from benchmark.errors import DataError
from benchmark.models.checkpoints import catalogue
from benchmark.models.checkpoints.catalogue import file_sha256, weights_path
from benchmark.store import data_root

#: statuses that stop a run
BLOCKING = ("missing", "wrong hash", "unknown", "malformed")


def check_rows(pairs: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """One row per weights file: weights, backbone, path, status (ok | unverified | missing |
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


@dataclass(frozen=True)
class Input:
    kind: str  # "weights" | "split"
    name: str  # catalogue name or file / prepared split name
    status: str  # ok | unverified | generated | missing | wrong hash | unknown | malformed
    path: str
    size: int | None  # bytes on disk, or to download; None when unknown
    command: str  # what fetches or makes it ("" when nothing can)
    detail: str = ""

    @property
    def blocking(self) -> bool:
        return self.status in BLOCKING


def raw_dir(family: str) -> Path:
    """Where the listing suggests downloading a family's archives (any folder will do)."""
    return data_root() / "raw" / family


def weights_inputs(pairs: list[tuple[str, str]], grid: str) -> list[Input]:
    out = []
    for r in check_rows(pairs):
        path = Path(r["path"])
        entry = catalogue.lookup(r["weights"])
        command = (f"python -m benchmark.weights fetch --grid {grid} --only {r['weights']}"
                   if entry else "")
        size = path.stat().st_size if path.is_file() else None
        detail = r["detail"] if r["status"] not in ("missing", "ok") else (
            "" if r["status"] == "ok" else (f"from {entry.url}" if entry else r["detail"]))
        out.append(Input("weights", r["weights"], r["status"], str(path), size, command, detail))
    return out


def split_inputs(splits: list[str], generated: tuple[str, ...]) -> list[Input]:
    """One row per prepared split (a corrupted split made on the fly counts as its base)."""
    from benchmark.data.split import MANIFEST, load_split, parse_corrupted_split_name, split_dir

    needed: list[str] = []
    for name in splits:
        parsed = parse_corrupted_split_name(name)
        base = parsed[0] if parsed and not (split_dir(name) / MANIFEST).is_file() else name
        if base not in needed:
            needed.append(base)
    out = []
    for name in needed:
        path = split_dir(name)
        if (path / MANIFEST).is_file():
            try:
                split = load_split(name, check_images=False)
            except DataError as e:
                out.append(Input("split", name, "malformed", str(path), None,
                                 _prepare_command(name), str(e)))
                continue
            out.append(Input("split", name, "ok", str(path), None, "",
                             f"{split.manifest.get('num_images')} images"))
            continue
        family = family_of(name)
        if family is None and generated:
            out.append(Input("split", name, "generated", str(path), None,
                             f"python -m benchmark.prepare {' / '.join(generated)}",
                             "made by the run itself"))
            continue
        out.append(Input("split", name, "missing", str(path), _download_size(name),
                         _prepare_command(name), _archives_detail(name)))
    return out


def _prepare_command(split: str) -> str:
    family = family_of(split)
    if family is None:
        return "python -m benchmark.prepare DATASET --raw PATH (see datasets/*.md)"
    return f"python -m benchmark.prepare {family} --download --raw {raw_dir(family)}"


def _download_size(split: str) -> int | None:
    family = family_of(split)
    if family is None:
        return None
    sizes = [a.size for a in DATASETS[family].archives_for([split])]
    return None if None in sizes else sum(s for s in sizes if s is not None)


def _archives_detail(split: str) -> str:
    family = family_of(split)
    if family is None:
        return "no public archive known"
    ds = DATASETS[family]
    parts = []
    for a in ds.archives_for([split]):
        where = raw_dir(family)
        there = (where / a.file).is_file() or (where / f".{a.file}.extracted").is_file()
        parts.append(f"{a.file} ({human(a.size) if a.size else 'size unpublished'}"
                     f"{', downloaded' if there else ''})")
    login = "; needs a login: the command prints the steps" if ds.login else ""
    return "raw: " + ", ".join(parts) + login


def grid_inputs(grid: Any, grid_arg: str) -> list[Input]:
    """Every input of a grid loaded with ``resolve_data=False``; ``grid_arg`` is how the
    user named it (for the commands printed)."""
    cells = grid.cells()
    pairs = list(dict.fromkeys((s.backbone.name, s.backbone.weights) for s in cells))
    splits = list(dict.fromkeys(n for s in cells for n in s.all_splits))
    return weights_inputs(pairs, grid_arg) + split_inputs(splits, grid.prepare)


def print_inputs(inputs: list[Input], file: Any = None) -> None:
    """The listing: status, kind, name, size, path; under each one not ok, how to get it."""
    for i in inputs:
        size = human(i.size) if i.size is not None else "-"
        print(f"  {i.status:10} {i.kind:7} {i.name:32} {size:>9}  {i.path}", file=file)
        if i.status not in ("ok",):
            if i.detail:
                print(f"  {'':10} {'':7} {i.detail}", file=file)
            if i.command and i.status != "unverified":
                print(f"  {'':10} {'':7} -> {i.command}", file=file)


def fetch_commands(inputs: list[Input], grid_arg: str) -> list[str]:
    """The distinct commands that fetch every blocking input (all weights in one)."""
    weights = [i for i in inputs if i.blocking and i.kind == "weights" and i.command]
    commands = ([f"python -m benchmark.weights fetch --grid {grid_arg}"] if len(weights) > 1
                else [i.command for i in weights])
    return commands + list(dict.fromkeys(
        i.command for i in inputs if i.blocking and i.kind != "weights" and i.command))
