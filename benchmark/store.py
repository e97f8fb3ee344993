"""Result layout, atomic writes, hashing and provenance.

Records (small JSON, committed) live under ``results/runs/<fingerprint>/``; heavy artifacts
(checkpoints, predictions, logs) under the artifacts root (``artifacts/`` by default,
``$BENCH_ARTIFACTS`` to move it).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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
