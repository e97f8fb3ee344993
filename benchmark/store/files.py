"""Files: the roots, atomic writes, hashing and locks.

Records (small JSON, committed) live under ``results/runs/<fingerprint>/``; heavy artifacts
(checkpoints, predictions, logs) under the artifacts root (``artifacts/`` by default,
``$BENCH_ARTIFACTS`` to move it). A command's ``--root DIR`` puts both under DIR
(:func:`work_root` decides, :func:`rooted` sets them for the command and its children).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError, StorageError

REPO_ROOT = Path(__file__).resolve().parents[2]
#: where grids other than the committed one write by default (git-ignored)
RUNS_ROOT = REPO_ROOT / "runs"
#: the grid whose records are the committed results/ and ./BENCHMARKS.md
COMMITTED_GRID = REPO_ROOT / "benchmark" / "grids" / "demo.yaml"


def results_root() -> Path:
    return Path(os.environ.get("BENCH_RESULTS", REPO_ROOT / "results"))


def artifacts_root() -> Path:
    return Path(os.environ.get("BENCH_ARTIFACTS", REPO_ROOT / "artifacts"))


def work_root(root: str | Path | None, grid: Path | None = None, *,
              variant: bool = False) -> Path | None:
    """The one rule every command follows for where results and artifacts go: ``root`` (a
    command's ``--root``) when given; else None (``$BENCH_RESULTS`` / ``$BENCH_ARTIFACTS``,
    or the committed results/ and artifacts/) when ``$BENCH_RESULTS`` is set, when no grid
    file is named, or for the committed grid as it is; else ``runs/<grid file stem>/``, so a
    user's grid, or the committed one changed by ``--set`` (``variant``), never writes into
    the committed leaderboard."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("BENCH_RESULTS") or grid is None:
        return None
    committed = Path(grid).resolve() == COMMITTED_GRID.resolve()
    return None if committed and not variant else RUNS_ROOT / Path(grid).stem


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` inside the block (child processes inherit them); every
    variable restored, or removed again, after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def rooted(root: Path | None) -> Iterator[None]:
    """Inside the block, ``$BENCH_RESULTS`` = ``root/results`` and ``$BENCH_ARTIFACTS`` =
    ``root/artifacts`` (child processes and SLURM jobs inherit them); restored after it.
    ``None`` changes nothing."""
    if root is None:
        yield
        return
    with environment({"BENCH_RESULTS": str(Path(root) / "results"),
                      "BENCH_ARTIFACTS": str(Path(root) / "artifacts")}):
        yield


def data_root() -> Path:
    return Path(os.environ.get("BENCH_DATA", REPO_ROOT / "datasets" / "data"))


def weights_root() -> Path:
    """Where relative ``backbone.weights`` paths of grids are looked up."""
    return Path(os.environ.get("BENCH_WEIGHTS", REPO_ROOT / "weights"))


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _cannot_write(path: Path, e: OSError) -> StorageError:
    return StorageError(f"{path}: cannot write: {e.strerror or e}")


def _write_temp(path: Path, data: bytes, *, fsync: bool) -> Path:
    """``data`` in a new temp file beside ``path`` (shared permissions); its path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _cannot_write(path, e) from None
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _cannot_write(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write to a temp file in the same directory, fsync (unless told not to: per-image
    fsync would dominate cheap corruptions), then rename over ``path``."""
    path = Path(path)
    tmp = _write_temp(path, data, fsync=fsync)
    try:
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _cannot_write(path, e) from None


class WrittenTogether:
    """Several files that change together or not at all (a report's markdown, tables and
    plots): each is written to a temp file beside its target; leaving the ``with`` block
    renames them all, and an error anywhere removes every temp file and leaves the old files
    as they were. Write errors name the file (:class:`StorageError`)."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temp, target)

    def write(self, path: Path, data: bytes) -> None:
        path = Path(path)
        self._staged.append((_write_temp(path, data, fsync=False), path))

    def move(self, written: Path, path: Path) -> None:
        """Take a file already written elsewhere on the same filesystem (e.g. a plot)."""
        self._staged.append((Path(written), Path(path)))

    def __enter__(self) -> WrittenTogether:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            for tmp, path in self._staged:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, path)
                except OSError as e:
                    self._discard()
                    raise _cannot_write(path, e) from None
        self._discard()

    def _discard(self) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)


def remove_stray_temp_files(directory: Path, *, recursive: bool = True) -> int:
    """Delete the temp files of atomic writes that a killed process left behind in
    ``directory``; return how many. Call it only where no other process writes (under the
    lock that guards the directory)."""
    n = 0
    if directory.is_dir():
        for tmp in directory.rglob(".*.tmp") if recursive else directory.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            n += 1
    return n


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")  # noqa: SIM115 - closed by the with below
    except OSError as e:
        raise StorageError(f"{path}: cannot create the lock file: {e.strerror or e}") from None
    deadline = time.monotonic() + timeout_s
    with f:
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


def warn(message: str) -> None:
    """A one-line warning on stderr (damaged files that are recomputed, leftovers removed)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
