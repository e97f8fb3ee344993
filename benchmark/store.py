"""Result layout, atomic writes, hashing and provenance.

Records (small JSON, committed) live under ``results/runs/<fingerprint>/``; heavy artifacts
(checkpoints, predictions, logs) under the artifacts root (``artifacts/`` by default,
``$BENCH_ARTIFACTS`` to move it).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError

REPO_ROOT = Path(__file__).resolve().parent.parent


def results_root() -> Path:
    return Path(os.environ.get("BENCH_RESULTS", REPO_ROOT / "results"))


def artifacts_root() -> Path:
    return Path(os.environ.get("BENCH_ARTIFACTS", REPO_ROOT / "artifacts"))


def data_root() -> Path:
    return Path(os.environ.get("BENCH_DATA", REPO_ROOT / "datasets" / "data"))


def weights_root() -> Path:
    """Where relative ``backbone.weights`` paths of grids are looked up."""
    return Path(os.environ.get("BENCH_WEIGHTS", REPO_ROOT / "weights"))


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write to a temp file in the same directory, fsync (unless told not to: per-image
    fsync would dominate cheap corruptions), then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_lines(lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


class LockTimeout(BenchmarkError):
    pass


@contextlib.contextmanager
def file_lock(path: Path, timeout_s: float, *, poll_s: float = 0.2) -> Iterator[None]:
    """Exclusive advisory lock (flock) on ``path``, waited for at most ``timeout_s``.

    The holder writes "pid N on HOST" into the file, so a timeout names who holds it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    with open(path, "a+") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    f.seek(0)
                    holder = f.read().strip() or "another process"
                    raise LockTimeout(
                        f"{path}: held by {holder} for more than {timeout_s:.0f} s"
                    ) from None
                time.sleep(poll_s)
        try:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            f.flush()
            yield
        finally:
            with contextlib.suppress(OSError):
                f.truncate(0)
            fcntl.flock(f, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------ cell layout
def _read_json_dict(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Cell:
    """One run's directory, ``<results>/runs/<fingerprint>/`` — the only code that knows its
    file names, and the single writer of each:

    - ``spec.json``: the grid and spec of the cell (written when it starts or is submitted);
    - ``submitted.json``: the scheduler job that runs it;
    - ``failed.json``: why its last attempt failed (removed when it succeeds);
    - ``record.json``: the result, written last, atomically.
    """

    RECORD = "record.json"
    FAILED = "failed.json"
    SPEC = "spec.json"
    SUBMITTED = "submitted.json"

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

    def read_record(self) -> dict[str, Any] | None:
        path = self.path(self.RECORD)
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def write_spec(self, grid: str, spec: dict[str, Any], *, overwrite: bool = True) -> None:
        if overwrite or not self.path(self.SPEC).exists():
            atomic_write_json(self.path(self.SPEC), {"grid": grid, "spec": spec})

    def write_submitted(self, submission: dict[str, Any]) -> None:
        atomic_write_json(self.path(self.SUBMITTED), submission)

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
    every cell that differs only in its eval splits — the only code that knows its layout:
    ``last.pt`` (resumable checkpoint), ``model_final.pt``, ``train_log.json``,
    ``train.lock``, ``metrics/<split>.json`` and ``predictions/<split>.json``."""

    LAST = "last.pt"
    FINAL = "model_final.pt"

    def __init__(self, train_fingerprint: str, artifacts: Path | None = None) -> None:
        self.root = artifacts or artifacts_root()
        self.dir = self.root / "train" / train_fingerprint

    @property
    def last(self) -> Path:
        return self.dir / self.LAST

    @property
    def final(self) -> Path:
        return self.dir / self.FINAL

    @property
    def lock(self) -> Path:
        return self.dir / "train.lock"

    def metrics(self, split: str) -> Path:
        return self.dir / "metrics" / f"{split}.json"

    def predictions(self, split: str) -> Path:
        return self.dir / "predictions" / f"{split}.json"

    def relative(self, path: Path) -> str:
        """``path`` relative to the artifacts root (as records store it)."""
        return str(path.relative_to(self.root))

    def write_checkpoint(self, data: bytes) -> None:
        atomic_write_bytes(self.last, data)

    def write_final(self, data: bytes) -> None:
        atomic_write_bytes(self.final, data)
        self.last.unlink(missing_ok=True)

    def write_train_log(self, log: dict[str, Any]) -> None:
        atomic_write_text(self.dir / "train_log.json", json.dumps(log))

    def read_metrics(self, split: str) -> dict[str, Any] | None:
        path = self.metrics(split)
        return json.loads(path.read_text()) if path.is_file() else None

    def write_metrics(self, split: str, metrics: dict[str, Any]) -> None:
        atomic_write_json(self.metrics(split), metrics)

    def write_predictions(self, split: str, predictions: list[dict[str, Any]]) -> None:
        atomic_write_text(self.predictions(split), json.dumps(predictions))
