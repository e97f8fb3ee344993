"""Disk space, checked before anything large is written (a download, an extraction)."""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmark.errors import StorageError


def human(n: float) -> str:
    """Bytes as a short human size (1.5 GB)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def require_space(directory: Path, need: int, what: str) -> None:
    """StorageError naming the folder, the need and the free space when ``need`` bytes do not
    fit in ``directory`` (its nearest existing ancestor)."""
    where = Path(directory)
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if need > free:
        raise StorageError(f"not enough disk space in {directory} for {what}: needs "
                           f"{human(need)}, {human(free)} free")
