"""Run records as the report reads them: every ``<results>/runs/*/record.json`` of a results
root, validated (:func:`benchmark.evaluation.record.validate_record`, the record's owner).

A file that cannot be read or does not validate is skipped with a named reason
(:class:`Skipped`), never fatal. This module owns the results directory layout the report
reads (:func:`scan`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.evaluation.record import RecordError, is_number, validate_record
from benchmark.store import Cell, list_cells

__all__ = ["SMOKE_ROOT_MARK", "Loaded", "Record", "RecordError", "Skipped", "display_path",
           "is_number", "load_records", "read_record", "scan", "validate_record"]

#: a results root a smoke test writes (``python -m benchmark.run --smoke``) holds this file;
#: only there are records marked ``"smoke": true`` read — anywhere else they are skipped,
#: so a rehearsal never counts as a result
SMOKE_ROOT_MARK = "SMOKE_ROOT"


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class Record:
    path: Path
    sha256: str
    data: dict[str, Any] = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return str(self.data["fingerprint"])


@dataclass
class Loaded:
    records: list[Record]
    skipped: list[Skipped]
    pending: int = 0  # run directories without a record and without failed.json
    failed: int = 0  # run directories with failed.json and no record


def read_record(path: Path) -> Record:
    """Read and validate one record file; raise :class:`RecordError` with the reason."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecordError(f"unreadable: {e.strerror or e}") from None
    if not raw.strip():
        raise RecordError("empty file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RecordError(f"not UTF-8 text: {e}") from None
    except json.JSONDecodeError as e:
        raise RecordError(f"malformed JSON (truncated?): {e}") from None
    validate_record(data, path.parent.name)
    if data.get("smoke") is True and not (path.parents[2] / SMOKE_ROOT_MARK).is_file():
        raise RecordError("a smoke-test record (python -m benchmark.run --smoke): a rehearsal "
                          "at a few iterations, never a result")
    return Record(path, hashlib.sha256(raw).hexdigest(), data)


def scan(results_dir: Path) -> tuple[list[Path], int, int]:
    """(record files, pending, failed) under ``results_dir/runs``, in fingerprint order:
    pending run directories have neither a record nor ``failed.json``."""
    paths: list[Path] = []
    pending = failed = 0
    for cell in list_cells(Path(results_dir)):
        names = cell.files()
        if Cell.RECORD in names:
            paths.append(cell.path(Cell.RECORD))
        elif Cell.FAILED in names:
            failed += 1
        else:
            pending += 1
    return paths, pending, failed


def load_records(results_dir: Path) -> Loaded:
    """All records under ``results_dir/runs``, sorted by fingerprint; bad ones are skipped."""
    paths, pending, failed = scan(results_dir)
    loaded = Loaded([], [], pending, failed)
    for path in paths:
        try:
            loaded.records.append(read_record(path))
        except RecordError as e:
            loaded.skipped.append(Skipped(display_path(path, results_dir), str(e)))
    return loaded


def display_path(path: Path, results_dir: Path) -> str:
    try:
        return str(Path(results_dir).name / path.relative_to(results_dir))
    except ValueError:
        return str(path)
