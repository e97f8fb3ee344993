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
