"""The cell layout: one object per directory, the single writer of each of its files.

``Cell`` owns ``<results>/runs/<fingerprint>/``; ``TrainingDir`` owns
``<artifacts>/train/<train_fingerprint>/`` and ``EvaluationDir`` its ``eval/<eval_fp>/``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from benchmark.store.files import (
    artifacts_root,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    canonical_json,
    results_root,
    sha256_bytes,
    warn,
)


def _read_json_dict(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def record_checksum(record: dict[str, Any]) -> str:
    """sha256 of a record's canonical JSON without its ``checksum`` field: written into every
    record, so a damaged or hand-edited record is never taken for a result."""
    return sha256_bytes(canonical_json({k: v for k, v in record.items() if k != "checksum"})
                        .encode())


def checksum_problem(record: dict[str, Any]) -> str | None:
    """Why ``record``'s checksum does not vouch for it (none, or not its content's); None
    when it does. The one check of a record's checksum, for the store and the report."""
    if "checksum" not in record:
        return "no checksum (written by an older version, or by hand)"
    if record["checksum"] != record_checksum(record):
        return "checksum mismatch: the file was changed after it was written"
    return None


def record_problem(record: Any, fingerprint: str) -> str | None:
    """Why ``record`` (parsed JSON) is not an intact record of cell ``fingerprint``; None
    when it is."""
    if not isinstance(record, dict):
        return f"expected a JSON object, found {type(record).__name__}"
    if record.get("fingerprint") != fingerprint:
        return f"fingerprint={record.get('fingerprint')!r}: not this cell's ({fingerprint})"
    return checksum_problem(record)


class Cell:
    """One run's directory, ``<results>/runs/<fingerprint>/`` — the only code that knows its
    file names, and the single writer of each:

    - ``spec.json``: the grid and spec of the cell (written when it starts or is submitted);
    - ``submitted.json``: the scheduler job that runs it;
    - ``running.json``: the process running it now (pid, host), while it runs;
    - ``failed.json``: why its last attempt failed (removed when it succeeds);
    - ``record.json``: the result, written last, atomically, with its checksum.

    Its lock (held by the process that runs the cell) lives under the artifacts root, so the
    committed results tree never holds one.
    """

    RECORD = "record.json"
    FAILED = "failed.json"
    SPEC = "spec.json"
    SUBMITTED = "submitted.json"
    RUNNING = "running.json"

    def __init__(self, fingerprint: str, results: Path | None = None) -> None:
        self.fingerprint = fingerprint
        self.dir = (results or results_root()) / "runs" / fingerprint

    def __repr__(self) -> str:
        return f"Cell({str(self.dir)!r})"

    def path(self, name: str) -> Path:
        return self.dir / name

    def files(self) -> set[str]:
        """Names present in the directory (one listing; empty when it does not exist)."""
        try:
            return set(os.listdir(self.dir))
        except (FileNotFoundError, NotADirectoryError):
            return set()

    def read(self, name: str) -> dict[str, Any] | None:
        return _read_json_dict(self.path(name))

    def load_record(self) -> tuple[dict[str, Any] | None, str | None]:
        """(record, problem): the record when it is present and intact; else None and why
        (no problem: there is no record yet)."""
        path = self.path(self.RECORD)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as e:
            return None, f"{path}: unreadable: {e.strerror or e}"
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return None, f"{path}: damaged record ({type(e).__name__}: {e})"
        problem = record_problem(record, self.fingerprint)
        return (None, f"{path}: {problem}") if problem else (record, None)

    def read_record(self) -> dict[str, Any] | None:
        """The intact record, or None: a damaged one is reported and the cell is not done."""
        record, problem = self.load_record()
        if problem:
            warn(f"{problem}; the cell will run again")
        return record

    def write_spec(self, grid: str, spec: dict[str, Any], *, overwrite: bool = True) -> None:
        if overwrite or not self.path(self.SPEC).exists():
            atomic_write_json(self.path(self.SPEC), {"grid": grid, "spec": spec})

    def write_submitted(self, submission: dict[str, Any]) -> None:
        atomic_write_json(self.path(self.SUBMITTED), submission)

    @property
    def lock(self) -> Path:
        return artifacts_root() / "locks" / f"{self.fingerprint}.lock"

    def write_running(self) -> None:
        """This process runs the cell now (``status`` shows it; a dead pid means it was
        interrupted)."""
        atomic_write_json(self.path(self.RUNNING), {
            "pid": os.getpid(), "host": socket.gethostname(),
            "job_id": os.environ.get("SLURM_JOB_ID"), "started": time.time(),
        })

    def clear_running(self) -> None:
        self.path(self.RUNNING).unlink(missing_ok=True)

    def write_failed(self, failure: dict[str, Any], *, keep_existing: bool = False) -> None:
        if keep_existing and self.path(self.FAILED).exists():
            return
        atomic_write_json(self.path(self.FAILED), failure)

    def clear_failed(self) -> None:
        self.path(self.FAILED).unlink(missing_ok=True)

    def retire_failed(self) -> None:
        """On a retry: the old failure stays as history (``failed.previous.json``), not as
        the cell's state."""
        if self.path(self.FAILED).exists():
            os.replace(self.path(self.FAILED), self.path("failed.previous.json"))

    def write_record(self, record: dict[str, Any]) -> None:
        """Write the record with its checksum (last, atomically); the cell is done."""
        record = {**record, "checksum": record_checksum(record)}
        atomic_write_json(self.path(self.RECORD), record)
        self.clear_failed()


def list_cells(results: Path | None = None) -> list[Cell]:
    """Every cell directory under ``<results>/runs``, by fingerprint."""
    root = results or results_root()
    try:
        names = sorted(
            e.name for e in os.scandir(root / "runs") if e.is_dir() and not e.name.startswith(".")
        )
    except FileNotFoundError:
        return []
    return [Cell(name, root) for name in names]


class TrainingDir:
    """The artifacts of one training, ``<artifacts>/train/<train_fingerprint>/``, shared by
    every cell that differs only in its evaluation — the only code that knows its layout:
    ``last.pt`` (resumable checkpoint), ``previous.pt`` (the one before it),
    ``model_final.pt``, ``train_log.json``, ``train.lock``, and one
    :class:`EvaluationDir` per evaluation setting under ``eval/``."""

    LAST = "last.pt"
    PREVIOUS = "previous.pt"
    FINAL = "model_final.pt"

    def __init__(self, train_fingerprint: str, artifacts: Path | None = None) -> None:
        self.root = artifacts or artifacts_root()
        self.dir = self.root / "train" / train_fingerprint

    @property
    def last(self) -> Path:
        return self.dir / self.LAST

    @property
    def previous(self) -> Path:
        return self.dir / self.PREVIOUS

    @property
    def final(self) -> Path:
        return self.dir / self.FINAL

    @property
    def lock(self) -> Path:
        return self.dir / "train.lock"

    def evaluation(self, eval_fingerprint: str) -> EvaluationDir:
        return EvaluationDir(self, eval_fingerprint)

    def relative(self, path: Path) -> str:
        """``path`` relative to the artifacts root (as records store it)."""
        return str(path.relative_to(self.root))

    def write_checkpoint(self, data: bytes) -> None:
        """The new ``last.pt``; the one it replaces stays as ``previous.pt`` (a resume falls
        back to it when ``last.pt`` cannot be read)."""
        if self.last.exists():
            os.replace(self.last, self.previous)
        atomic_write_bytes(self.last, data)

    def write_final(self, data: bytes) -> None:
        atomic_write_bytes(self.final, data)
        self.last.unlink(missing_ok=True)
        self.previous.unlink(missing_ok=True)

    def write_train_log(self, log: dict[str, Any]) -> None:
        atomic_write_text(self.dir / "train_log.json", json.dumps(log))


class EvaluationDir:
    """The evaluations of one training's final checkpoint under one evaluation setting,
    ``<training>/eval/<eval_fingerprint>/``: ``predictions/<split>.json`` and
    ``metrics/<split>.json``."""

    def __init__(self, training: TrainingDir, eval_fingerprint: str) -> None:
        self.training = training
        self.dir = training.dir / "eval" / eval_fingerprint

    def metrics(self, split: str) -> Path:
        return self.dir / "metrics" / f"{split}.json"

    def predictions(self, split: str) -> Path:
        return self.dir / "predictions" / f"{split}.json"

    def read_metrics(self, split: str) -> dict[str, Any] | None:
        """The split's metrics; None when missing or unreadable (a damaged file is reported
        and evaluated again)."""
        path = self.metrics(split)
        if not path.is_file():
            return None
        data = _read_json_dict(path)
        if data is None:
            warn(f"{path}: unreadable metrics file; evaluating the split again")
        return data

    def write_metrics(self, split: str, metrics: dict[str, Any]) -> None:
        atomic_write_json(self.metrics(split), metrics)

    def write_predictions(self, split: str, predictions: list[dict[str, Any]]) -> None:
        atomic_write_text(self.predictions(split), json.dumps(predictions))
